"""The decision audit log on SQLite and PostgreSQL: chained, tamper-evident, safe under concurrency."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import serving.audit
from nba.errors import InvalidField
from serving.audit import GENESIS, AuditLog
from serving.db import audit_log, open_engine


def record(i: int, member_id: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "member_id": member_id,
        "scores": {"eye_exam": 0.25 + i},
        "note": "é",
    } | extra


def filled(engine: Engine, n: int) -> AuditLog:
    log = AuditLog(engine)
    for i in range(1, n + 1):
        log.append(record(i, member_id=i % 2))
    return log


def tamper(engine: Engine, change: Callable[[Connection], object]) -> None:
    """Change stored records as someone with write access to the database could: triggers off first."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for trigger in ("audit_log_no_update", "audit_log_no_delete"):
                conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        change(conn)


def test_records_chain_and_verify(engine: Engine) -> None:
    log = AuditLog(engine)
    first, second = log.append(record(1)), log.append(record(2, member_id=None))
    assert (first.seq, first.prev_hash, second.seq, second.prev_hash) == (1, GENESIS, 2, first.hash)
    assert second.created_at >= first.created_at and second.created_at.tzinfo == dt.UTC
    assert log.get("r2") == record(2, member_id=None)
    assert log.get("nope") is None
    report = log.verify()
    assert (report.ok, report.checked, report.first_broken_seq, report.head_hash) == (
        True,
        2,
        None,
        second.hash,
    )


def test_hash_follows_the_documented_formula(engine: Engine) -> None:
    entry = AuditLog(engine).append(record(1))
    with engine.connect() as conn:
        text = conn.execute(sa.select(audit_log.c.record)).scalar_one()
    assert text == json.dumps(record(1), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    stamp = entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    header = json.dumps([1, stamp, "r1", 1], separators=(",", ":"))
    assert entry.hash == hashlib.sha256((GENESIS + header + text).encode()).hexdigest()


def test_an_empty_log_verifies(engine: Engine) -> None:
    assert AuditLog(engine).verify() == serving.audit.VerifyReport(True, 0, None, None, None)


def test_an_append_is_committed_when_it_returns(engine: Engine, store_url: str) -> None:
    AuditLog(engine).append(record(1))
    other = open_engine(store_url)
    try:
        assert AuditLog(other).get("r1") == record(1)
    finally:
        other.dispose()


def test_a_request_id_is_recorded_once(engine: Engine) -> None:
    log = filled(engine, 2)
    with pytest.raises(InvalidField) as raised:
        log.append(record(2, member_id=5))
    assert raised.value.field == "request_id"
    assert log.get("r2") == record(2, member_id=0)
    assert log.verify().checked == 2
    assert log.append(record(3)).seq == 3


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"member_id": 1, "x": 1}, "request_id"),
        ({"request_id": "", "member_id": 1}, "request_id"),
        ({"request_id": "r", "member_id": "1"}, "member_id"),
        ({"request_id": "r", "member_id": 1, "score": float("nan")}, "record"),
        ({"request_id": "r", "member_id": 1, "at": dt.date(2025, 1, 1)}, "record"),
        (["request_id", "r"], "record"),
    ],
)
def test_bad_records_are_refused(engine: Engine, bad: Any, field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        AuditLog(engine).append(bad)
    assert raised.value.field == field
    assert AuditLog(engine).verify().checked == 0


def set_row(at: int, **values: Any) -> Callable[[Connection], object]:
    """A change of the stored record ``at``."""
    return lambda conn: conn.execute(audit_log.update().where(audit_log.c.seq == at).values(**values))


TAMPERING: dict[str, tuple[Callable[[Connection], object], int]] = {
    "record": (set_row(3, record=sa.func.replace(audit_log.c.record, "3.25", "9.25")), 3),
    "member_id": (set_row(3, member_id=42), 3),
    "request_id": (set_row(3, request_id="x"), 3),
    "created_at": (set_row(3, created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)), 3),
    "prev_hash": (set_row(3, prev_hash="f" * 64), 3),
    "hash": (set_row(3, hash="0" * 64), 3),
    "deleted": (lambda c: c.execute(audit_log.delete().where(audit_log.c.seq == 3)), 3),
    "seq renumbered": (set_row(5, seq=9), 5),
    "first record": (set_row(1, member_id=7), 1),
}


@pytest.mark.parametrize("case", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_is_found_at_its_record(
    engine: Engine, case: tuple[Callable[[Connection], Any], int]
) -> None:
    change, broken = case
    log = filled(engine, 5)
    assert log.verify().ok
    tamper(engine, change)
    report = log.verify()
    assert (report.ok, report.first_broken_seq, report.checked) == (False, broken, broken - 1)
    assert report.reason is not None and f"record {broken}" in report.reason


def test_a_rehashed_record_breaks_the_next_link(engine: Engine) -> None:
    log = filled(engine, 5)
    with engine.connect() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 3)).one()
    forged = json.dumps(json.loads(row.record) | {"note": "forged"}, sort_keys=True, separators=(",", ":"))
    digest = serving.audit.chain_hash(row.prev_hash, 3, row.created_at, row.request_id, row.member_id, forged)
    tamper(engine, set_row(3, record=forged, hash=digest))
    report = log.verify()
    assert (report.ok, report.first_broken_seq) == (False, 4)
    assert "previous hash" in str(report.reason)


def test_verify_reads_page_by_page(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving.audit, "PAGE", 2)
    log = filled(engine, 7)
    pages: list[int] = []
    assert log.verify(on_progress=pages.append).checked == 7
    assert pages == [2, 2, 2, 1]
    tamper(engine, set_row(5, member_id=9))
    assert log.verify().first_broken_seq == 5


def test_records_for_a_member(engine: Engine) -> None:
    log = filled(engine, 5)
    entries = log.records_for_member(1)
    assert [e.seq for e in entries] == [1, 3, 5]
    assert [e.record["request_id"] for e in entries] == ["r1", "r3", "r5"]
    since = entries[1].created_at
    assert [e.seq for e in log.records_for_member(1, since=since)] == [3, 5]
    assert [e.seq for e in log.records_for_member(1, until=since)] == [1]
    assert log.records_for_member(99) == []


def test_reads_are_logged(engine: Engine) -> None:
    log = filled(engine, 1)
    log.log_read("r1", "key-1", "compliance")
    log.log_read("r1", "key-2", "admin")
    assert [(r.caller, r.role) for r in log.reads("r1")] == [("key-1", "compliance"), ("key-2", "admin")]
    with pytest.raises(InvalidField) as raised:
        log.log_read("r1", "key-1", "root")
    assert raised.value.field == "role"


@pytest.mark.parametrize("table", ["audit_log", "audit_reads"])
def test_the_database_refuses_changes(engine: Engine, table: str) -> None:
    log = filled(engine, 1)
    log.log_read("r1", "key-1", "compliance")
    for statement in (f"UPDATE {table} SET request_id = 'x'", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert log.verify().checked == 1 and len(log.reads("r1")) == 1


def test_threads_append_without_losing_or_forking(engine: Engine) -> None:
    log, threads, per_thread = AuditLog(engine), 6, 15
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            log.append({"request_id": f"t{t}-{i}", "member_id": t})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert_complete(engine, {f"t{t}-{i}" for t in range(threads) for i in range(per_thread)})


def append_records(url: str, prefix: str, count: int, start: Barrier) -> None:
    """In a child process: its own engine (nothing inherited is used), ``count`` records ``prefix-i``."""
    engine = open_engine(url)
    log = AuditLog(engine)
    start.wait(timeout=60)
    for i in range(count):
        log.append({"request_id": f"{prefix}-{i}", "member_id": i % 7, "scores": [0.1 * i]})
    engine.dispose()


def test_processes_append_without_losing_or_forking(engine: Engine, store_url: str) -> None:
    context = multiprocessing.get_context("fork")  # quick to start; each child opens its own connections
    start = context.Barrier(2)
    children = [context.Process(target=append_records, args=(store_url, p, 30, start)) for p in "ab"]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0, 0]
    assert_complete(engine, {f"{p}-{i}" for p in "ab" for i in range(30)})


def assert_complete(engine: Engine, request_ids: set[str]) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.seq, audit_log.c.request_id).order_by(audit_log.c.seq)
        ).all()
    assert [seq for seq, _ in rows] == list(range(1, len(request_ids) + 1))
    assert {request_id for _, request_id in rows} == request_ids
    report = AuditLog(engine).verify()
    assert report.ok and report.checked == len(request_ids)


@pytest.mark.slow
def test_verify_streams_a_million_records(engine: Engine) -> None:
    """1,000,000 chained records (written in bulk here) verify within a small, fixed memory."""
    import tracemalloc

    total, batch = 1_000_000, 20_000
    created, prev = dt.datetime(2025, 1, 1, tzinfo=dt.UTC), GENESIS
    for start in range(1, total + 1, batch):
        rows = []
        for seq in range(start, min(start + batch, total + 1)):
            text = serving.audit.canonical_json({"request_id": f"r{seq}", "member_id": seq % 997, "s": [0.5]})
            digest = serving.audit.chain_hash(prev, seq, created, f"r{seq}", seq % 997, text)
            rows.append({"seq": seq, "request_id": f"r{seq}", "member_id": seq % 997, "created_at": created,
                         "record": text, "prev_hash": prev, "hash": digest})  # fmt: skip
            prev = digest
        with engine.begin() as conn:
            conn.execute(audit_log.insert(), rows)
    tracemalloc.start()
    try:
        report = AuditLog(engine).verify()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok and report.checked == total and report.head_hash == prev
    assert peak < 64 * 2**20, f"verify peaked at {peak / 2**20:.0f} MiB"


def test_group_commit_from_many_threads_keeps_one_valid_chain(engine: Engine) -> None:
    from serving.audit import GroupCommitter

    log = AuditLog(engine)
    committer = GroupCommitter(log, max_batch=16)
    entries: list[Any] = []

    def worker(start: int) -> None:
        for i in range(start, start + 25):
            entries.append(committer.append(record(i)))

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.seq for e in entries) == list(range(1, 201))
    assert {e.request_id for e in entries} == {
        record(k * 100 + i)["request_id"] for k in range(8) for i in range(25)
    }
    report = log.verify()
    assert report.ok and report.checked == 200


def test_group_commit_refuses_only_the_bad_record(engine: Engine) -> None:
    from serving.audit import GroupCommitter

    log = AuditLog(engine)
    committer = GroupCommitter(log)
    committer.append(record(1))
    with pytest.raises(InvalidField, match="request_id"):
        committer.append(record(1))  # the same request id twice
    assert committer.append(record(2)).seq == 2
    assert log.verify().ok
