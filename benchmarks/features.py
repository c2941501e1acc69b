"""Benchmark `nba features build`: 1,000,000 members from 36 months of claims on DuckDB.

Prints the time and peak RSS of the profile build, and in the same run the reference: one
plain DuckDB pass over the same claims (count and sum per member); then their ratio. Goal
(issue 3): at most 4x the reference and 8 GB peak RSS. Also reports Spark on 100,000 members.

    .venv/bin/python -m benchmarks.features                       # generates worlds if missing
    .venv/bin/python -m benchmarks.features --members 1000000 --spark-members 100000
    .venv/bin/python -m benchmarks.features --world DIR           # an existing world
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import peak_rss_mb, write_result

WORLDS = Path(__file__).parent / ".worlds"
GOAL_RATIO = 4.0
GOAL_RSS_MB = 8 * 1024


def world(members: int, given: Path | None) -> Path:
    """The world to measure on; generated once and kept under benchmarks/.worlds/."""
    if given:
        if not (given / "extract.json").exists():
            raise SystemExit(
                f"--world: expected a folder written by `nba generate` (with extract.json), got {given}"
            )
        return given
    path = WORLDS / f"{members}"
    if not (path / "extract.json").exists():
        from features.synthetic import WorldConfig, generate_world

        print(f"generating a {members:,}-member world into {path} (kept for later runs)", flush=True)
        generate_world(WorldConfig(members=members, months=36, seed=1), path, overwrite=True)
    return path


def as_of_for(data: Path) -> dt.date:
    extract = json.loads((data / "extract.json").read_text())["extract_date"]
    return dt.date.fromisoformat(extract) + dt.timedelta(days=1)


def child(kind: str, data: Path, engine: str) -> dict[str, object]:
    """One measurement in a fresh process, so its peak RSS is its own.

    The clock starts once the program is loaded, as for the reference (whose ``import duckdb``
    is not timed either): the modules ``nba features build`` imports, including those Ibis
    loads on first use, and for Spark the session. That loading time is reported apart.
    """
    import duckdb

    as_of = as_of_for(data)
    loaded = 0.0
    if kind == "profiles":
        loading = time.perf_counter()
        import pandas  # noqa: F401  (Ibis imports it to return results)

        from features.build import build_profiles, connect

        with connect(engine):
            pass
        loaded = time.perf_counter() - loading
    started = time.perf_counter()
    if kind == "reference":
        rows = (
            duckdb.sql(
                f"""select member_id, count(*) n, sum(total_cost) spend
                from read_parquet('{data}/claims.parquet') group by member_id"""
            )
            .to_arrow_table()
            .num_rows
        )
    else:
        rows = build_profiles(data, as_of, engine=engine).num_rows
    seconds = round(time.perf_counter() - started, 2)
    return {"seconds": seconds, "load_seconds": round(loaded, 2), "rows": rows, "peak_rss_mb": peak_rss_mb()}


def measure(kind: str, data: Path, engine: str = "duckdb") -> dict[str, object]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.features",
        "--child",
        kind,
        "--world",
        str(data),
        "--engine",
        engine,
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--spark-members", type=int, default=100_000)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--engine", default="duckdb")
    parser.add_argument("--child", choices=["profiles", "reference"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.world, args.engine)))
        return
    data = world(args.members, args.world)
    claims = _claim_rows(data)
    reference = measure("reference", data)
    profiles = measure("profiles", data)
    ratio = profiles["seconds"] / reference["seconds"]  # type: ignore[operator]
    rss = profiles["peak_rss_mb"]["self"]  # type: ignore[index]
    print(f"world: {data} ({claims:,} claim lines)")
    print(f"reference, one DuckDB pass (count and sum per member): {reference['seconds']} s")
    print(
        f"profiles on DuckDB: {profiles['seconds']} s for {profiles['rows']:,} members, "
        f"peak RSS {rss:,.0f} MB (loading the program before that: {profiles['load_seconds']} s)"
    )
    print(
        f"ratio to reference: {ratio:.2f} (goal <= {GOAL_RATIO}); RSS ratio to 8 GB: {rss / GOAL_RSS_MB:.2f}"
    )
    result = {"members": args.members, "claims": claims, "reference": reference, "profiles": profiles,
              "ratio": round(ratio, 2), "goal_ratio": GOAL_RATIO, "goal_rss_mb": GOAL_RSS_MB}  # fmt: skip
    if args.spark_members:
        small = world(args.spark_members, None)
        spark = measure("profiles", small, engine="spark")
        duck = measure("profiles", small)
        print(f"Spark (local[2]) on {args.spark_members:,} members: {spark['seconds']} s, after "
              f"{spark['load_seconds']} s starting the session (DuckDB on the same world: "
              f"{duck['seconds']} s)")  # fmt: skip
        result["spark"] = {"members": args.spark_members, "spark": spark, "duckdb": duck}
    print(f"wrote {write_result('features', result)}")


def _claim_rows(data: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(data / "claims.parquet").num_rows


if __name__ == "__main__":
    main()
