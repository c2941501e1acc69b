"""Benchmark the online profile store: publish time and single-member read latency.

Publishes 100,000 members x 150 features (floats, nullable ints, bools, short strings) on
SQLite, and on PostgreSQL when NBA_TEST_POSTGRES_URL (or the default local server) answers,
then times 10,000 random ``get`` calls. The reference measured in the same run is a raw
``sqlite3`` primary-key lookup on a plain table holding the same payloads (no decoding);
the run also times the decoding alone, ``json.loads`` of the same values (the encoding not
chosen) and the same lookup through SQLAlchemy ``text()`` on a persistent connection.

    .venv/bin/python -m benchmarks.store
    .venv/bin/python -m benchmarks.store --members 1000000 --backends sqlite postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from benchmarks.common import peak_rss_mb, write_result
from features.profile_codec import ProfileCodec
from features.store import VIEW, OnlineStore, profiles_table

POSTGRES_URL = os.environ.get("NBA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AS_OF = dt.date(2024, 12, 31)


def profile_frame(members: int, features: int, seed: int) -> pd.DataFrame:
    """60% floats (5% missing), 25% ints (some nullable), 10% bools, 5% strings."""
    rng = np.random.default_rng(seed)
    n_float, n_int, n_bool = int(features * 0.6), int(features * 0.25), int(features * 0.1)
    n_str = features - n_float - n_int - n_bool
    columns: dict[str, Any] = {"member_id": rng.permutation(members).astype("int64") + 1_000_000}
    for i in range(n_float):
        values = rng.gamma(2.0, 150.0, members)
        values[rng.random(members) < 0.05] = np.nan
        columns[f"amount_{i:03d}"] = values
    for i in range(n_int):
        raw = rng.integers(0, 120, members)
        counts = pd.array(raw, dtype="Int64")
        if i % 3 == 0:  # a third of the counts are nullable, about 8% missing
            counts[raw > 110] = pd.NA
        columns[f"count_{i:03d}"] = counts
    for i in range(n_bool):
        columns[f"flag_{i:03d}"] = rng.random(members) < 0.3
    regions = np.array(["Bretagne", "Occitanie", "Île-de-France", "Grand Est", "Normandie"], dtype=object)
    for i in range(n_str):
        columns[f"label_{i:03d}"] = regions[rng.integers(0, len(regions), members)]
    return pd.DataFrame(columns)


def timed_calls(calls: dict[str, Callable[[int], object]], ids: Sequence[int]) -> dict[str, dict[str, float]]:
    """Mean, median and 99th percentile of each call, in microseconds.

    The calls take turns on each id, so a machine busy with something else slows them alike.
    """
    spent = {name: np.empty(len(ids)) for name in calls}
    for i, member in enumerate(ids):
        for name, call in calls.items():
            started = time.perf_counter_ns()
            call(member)
            spent[name][i] = time.perf_counter_ns() - started
    return {
        name: {
            "mean_us": round(float(ns.mean()) / 1000, 1),
            "p50_us": round(float(np.percentile(ns, 50)) / 1000, 1),
            "p99_us": round(float(np.percentile(ns, 99)) / 1000, 1),
        }
        for name, ns in spent.items()
    }


def publish_twice(store: OnlineStore, frame: pd.DataFrame) -> dict[str, Any]:
    """The first publish into an empty store, then a second that replaces it (and drops the first)."""
    started = time.perf_counter()
    store.publish(frame, AS_OF, "bench-1")
    first = time.perf_counter() - started
    started = time.perf_counter()
    store.publish(frame, AS_OF, "bench-2")
    second = time.perf_counter() - started
    rate = len(frame) / second
    return {
        "publish_seconds": round(first, 2),
        "republish_seconds": round(second, 2),
        "members_per_second": round(rate),
        "minutes_for_1m_members": round(1_000_000 / rate / 60, 1),
    }


def sqlite_run(frame: pd.DataFrame, ids: list[int], folder: Path) -> dict[str, Any]:
    path, reference = folder / "store.db", folder / "reference.db"
    with OnlineStore.from_url(f"sqlite:///{path}") as store:
        result = publish_twice(store, frame)
        result["file_mb"] = round(sum(p.stat().st_size for p in folder.glob("store.db*")) / 2**20, 1)
        copy_plain_table(path, profiles_table(store.current().load_id), reference)  # type: ignore[union-attr]
        raw = sqlite3.connect(reference, isolation_level=None)
        view = sqlite3.connect(path, isolation_level=None)
        engine = sa.create_engine(f"sqlite:///{path}", isolation_level="AUTOCOMMIT")
        plain = "SELECT payload FROM profiles WHERE member_id = ?"
        fetch = f"SELECT load_id, payload FROM {VIEW} WHERE member_id = ?"
        statement = sa.text(f"SELECT load_id, payload FROM {VIEW} WHERE member_id = :m")
        with engine.connect() as conn:
            calls: dict[str, Callable[[int], object]] = {
                "get": store.get,
                "reference_raw_sqlite3_pk": lambda m: raw.execute(plain, (m,)).fetchall(),
                "raw_sqlite3_view_fetch": lambda m: view.execute(fetch, (m,)).fetchall(),
                "sqlalchemy_text_view_fetch": lambda m: conn.execute(statement, {"m": m}).fetchall(),
            }
            result |= timed_calls(calls, ids)
        engine.dispose()
        result |= timed_calls({"get_many_100": lambda i: store.get_many(ids[i : i + 100])}, range(200))
    payloads = [raw.execute(plain, (m,)).fetchall()[0][0] for m in ids]
    raw.close()
    view.close()
    ratio = result["get"]["mean_us"] / result["reference_raw_sqlite3_pk"]["mean_us"]
    return result | {"ratio_get_to_reference": round(ratio, 1)} | decoding(frame, payloads)


def copy_plain_table(store_path: Path, table: str, reference: Path) -> None:
    """The reference: the same payloads in a plain rowid table of another file."""
    raw = sqlite3.connect(reference, isolation_level=None)
    raw.execute("CREATE TABLE profiles (member_id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    raw.execute(f"ATTACH DATABASE '{store_path}' AS store")
    raw.execute(f"INSERT INTO profiles SELECT member_id, payload FROM store.{table}")
    raw.execute("DETACH DATABASE store")
    raw.close()


def decoding(frame: pd.DataFrame, payloads: list[bytes]) -> dict[str, Any]:
    """The codec's decode alone, against json.loads of the same rows as JSON arrays; the encode."""
    features = frame.drop(columns="member_id")
    codec = ProfileCodec.for_frame(features)
    rows = [json.dumps(list(codec.decode(p).values())) for p in payloads[:2000]]
    calls: dict[str, Callable[[int], object]] = {
        "decode": lambda i: codec.decode(payloads[i]),
        "json_array_decode": lambda i: dict(zip(codec.names, json.loads(rows[i]), strict=False)),
    }
    figures = timed_calls(calls, range(len(rows)))
    started = time.perf_counter()
    for start in range(0, len(features), 5000):
        codec.encode(features.iloc[start : start + 5000])
    return figures | {
        "encode_seconds": round(time.perf_counter() - started, 2),
        "payload_bytes_mean": round(float(np.mean([len(p) for p in payloads]))),
    }


def postgres_run(frame: pd.DataFrame, ids: list[int]) -> dict[str, Any] | None:
    """The same on PostgreSQL, in a schema of its own; the reference is a raw psycopg lookup."""
    admin = sa.create_engine(sa.make_url(POSTGRES_URL).update_query_dict({"connect_timeout": "3"}))
    schema = f"nba_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL at {POSTGRES_URL} is unreachable, skipped: {str(exc.orig).splitlines()[0]}")
        return None
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        with OnlineStore.from_url(url.render_as_string(hide_password=False)) as store:
            result = publish_twice(store, frame)
            raw = sa.create_engine(url, isolation_level="AUTOCOMMIT").raw_connection()
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            table = profiles_table(store.current().load_id)  # type: ignore[union-attr]
            lookup = f"SELECT payload FROM {table} WHERE member_id = %s"
            calls: dict[str, Callable[[int], object]] = {
                "get": store.get,
                "reference_raw_psycopg_pk": lambda m: cursor.execute(lookup, (m,)).fetchall(),
            }
            result |= timed_calls(calls, ids)
            raw.close()
        ratio = result["get"]["mean_us"] / result["reference_raw_psycopg_pk"]["mean_us"]
        return result | {"ratio_get_to_reference": round(ratio, 1)}
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=150)
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument(
        "--backends", nargs="*", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    frame = profile_frame(args.members, args.features, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    ids = rng.choice(frame["member_id"].to_numpy(), size=args.reads).tolist()
    result: dict[str, Any] = {"members": args.members, "features": args.features, "reads": args.reads}
    if "sqlite" in args.backends:
        with tempfile.TemporaryDirectory(prefix="nba-bench-store-") as folder:
            result["sqlite"] = sqlite_run(frame, ids, Path(folder))
    if "postgres" in args.backends:
        result["postgres"] = postgres_run(frame, ids)
    result["peak_rss_mb"] = peak_rss_mb()
    report(result)
    complete = args.members == 100_000 and set(args.backends) == {"sqlite", "postgres"}
    name = "store" if complete else f"store-{args.members}-{'-'.join(args.backends)}"
    print(f"wrote {write_result(name, result)}")


def report(result: dict[str, Any]) -> None:
    print(f"{result['members']:,} members x {result['features']} features, {result['reads']:,} reads")
    for backend in ("sqlite", "postgres"):
        if not (f := result.get(backend)):
            continue
        ref = f.get("reference_raw_sqlite3_pk") or f["reference_raw_psycopg_pk"]
        get = f["get"]
        print(
            f"[{backend}] publish {f['publish_seconds']} s, republish {f['republish_seconds']} s "
            f"({f['members_per_second']:,} members/s, {f['minutes_for_1m_members']} min per million)\n"
            f"[{backend}] get mean {get['mean_us']} us, p99 {get['p99_us']} us; reference mean "
            f"{ref['mean_us']} us, p99 {ref['p99_us']} us; ratio {f['ratio_get_to_reference']}"
        )
    if s := result.get("sqlite"):
        print(
            f"[sqlite] decode {s['decode']['mean_us']} us "
            f"(json.loads {s['json_array_decode']['mean_us']} us); "
            f"view fetch raw sqlite3 {s['raw_sqlite3_view_fetch']['mean_us']} us, "
            f"SQLAlchemy text() {s['sqlalchemy_text_view_fetch']['mean_us']} us\n"
            f"[sqlite] encode {s['encode_seconds']} s, file {s['file_mb']} MB, "
            f"payload {s['payload_bytes_mean']} B"
        )


if __name__ == "__main__":
    main()
