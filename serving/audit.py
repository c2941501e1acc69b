"""The decision audit log: one record per decision, append-only and hash-chained (COMPLIANCE.md).

Record ``seq`` (1, 2, 3, ... without gaps) stores its decision as canonical JSON (sorted keys,
no NaN, UTF-8), the hash of record ``seq - 1`` (64 zeros for the first) and its own hash::

    hash = sha256(prev_hash + json([seq, created_at, request_id, member_id]) + record_json)

where ``created_at`` is written ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. The header binds the columns
kept beside the JSON, so editing any stored field, or deleting or inserting a record, breaks the
chain at that record; :meth:`AuditLog.verify` finds the first break. Removing the newest records
leaves a valid shorter chain: compare the head hash with one kept elsewhere to detect that.

Appends are serialized across threads and processes (SQLite ``BEGIN IMMEDIATE``; on PostgreSQL
an advisory transaction lock per schema) and committed before :meth:`AuditLog.append` returns.
They and :meth:`AuditLog.get` run straight on the driver (:func:`serving.db.driver_writing`,
:class:`serving.db.Reader`): every ``/recommend`` appends and every ``/feedback`` reads.
This module offers no way to change or delete a record, and database triggers refuse it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nba import vocab
from nba.errors import InvalidField
from serving.db import (
    audit_log,
    audit_reads,
    driver_sql,
    driver_time,
    driver_writing,
    reader_for,
    utcnow,
    writing,
)

GENESIS: Final = "0" * 64
PAGE: Final = 1_000  # records read per query while verifying
LOCK_CLASS: Final = 0x6E626121  # first key of the PostgreSQL advisory lock; the second is the schema's
ID_MAX: Final = 200


@dataclass(frozen=True)
class AuditEntry:
    """One stored decision record and its place in the chain."""

    seq: int
    request_id: str
    member_id: int | None
    created_at: dt.datetime
    record: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """``checked`` records were sound; if not ``ok``, record ``first_broken_seq`` is not, for ``reason``."""

    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str | None
    head_hash: str | None = None
    """Hash of the last sound record: keep it elsewhere to detect a later truncation."""


@dataclass(frozen=True)
class AuditRead:
    """Someone read a decision's record (an explanation)."""

    request_id: str
    caller: str
    role: str
    read_at: dt.datetime


def canonical_json(record: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, no NaN or infinity, UTF-8 text."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(
    prev_hash: str, seq: int, created_at: dt.datetime, request_id: str, member_id: int | None, text: str
) -> str:
    """The hash of a record (module doc)."""
    header = json.dumps([seq, stamp(created_at), request_id, member_id], separators=(",", ":"))
    return hashlib.sha256((prev_hash + header + text).encode("utf-8")).hexdigest()


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Append decision records, read them back, verify the chain, log who read them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = reader_for(engine)
        self._integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        self._sql = {
            "head": driver_sql(engine, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"),
            "insert": driver_sql(
                engine,
                "INSERT INTO audit_log (seq, request_id, member_id, created_at, record, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ),
            "get": driver_sql(engine, "SELECT record FROM audit_log WHERE request_id = ?"),
        }

    def append(self, record: Mapping[str, Any]) -> AuditEntry:
        """Chain and store ``record``; it is committed when this returns.

        ``record`` must be a JSON object with a unique ``request_id`` (str) and a ``member_id``
        (int, or None when the decision has no member); raises InvalidField otherwise.
        """
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[Mapping[str, Any]]) -> list[AuditEntry]:
        """Chain and store ``records`` in order, in one transaction (a group commit): all are
        committed when this returns, or none is."""
        prepared = [_prepared(record) for record in records]
        entries = []
        try:
            with driver_writing(self.engine) as cursor:
                self._lock(cursor)
                cursor.execute(self._sql["head"])
                head = cursor.fetchone()
                seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
                rows = []
                for (request_id, member_id, text), record in zip(prepared, records, strict=True):
                    seq += 1
                    created = utcnow()  # under the lock: created_at grows with seq
                    digest = chain_hash(prev, seq, created, request_id, member_id, text)
                    stored = driver_time(self.engine, created)
                    rows.append((seq, request_id, member_id, stored, text, prev, digest))
                    entries.append(
                        AuditEntry(seq, request_id, member_id, created, dict(record), prev, digest)
                    )
                    prev = digest
                cursor.executemany(self._sql["insert"], rows)
        except self._integrity_error:
            for request_id, _, _ in prepared:
                if self.get(request_id) is not None:
                    raise InvalidField("request_id", "an id no earlier decision used", request_id) from None
            raise
        return entries

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The record of one decision, or None."""
        rows = self._reader.fetch(self._sql["get"], (request_id,))
        return dict(json.loads(rows[0][0])) if rows else None

    def records_for_member(
        self, member_id: int, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AuditEntry]:
        """The member's decisions in chain order, created in [since, until) when given."""
        query = sa.select(audit_log).where(audit_log.c.member_id == member_id).order_by(audit_log.c.seq)
        if since is not None:
            query = query.where(audit_log.c.created_at >= since)
        if until is not None:
            query = query.where(audit_log.c.created_at < until)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def verify(self, on_progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Walk the chain up to the record that was last when called, a page at a time.

        ``on_progress(n)`` is called after each page of ``n`` sound records.
        """
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(audit_log.c.seq))).scalar() or 0
        prev, checked = GENESIS, 0
        while checked < last:
            rows = self._page(after=checked, last=last)
            if not rows:
                return self._broken(checked, prev, f"records {checked + 1} to {last} are missing")
            for row in rows:
                problem = _link_problem(row, checked + 1, prev)
                if problem:
                    return self._broken(checked, prev, problem)
                prev, checked = row.hash, checked + 1
            if on_progress is not None:
                on_progress(len(rows))
        return VerifyReport(True, checked, None, None, prev if checked else None)

    @staticmethod
    def _broken(checked: int, prev: str, reason: str) -> VerifyReport:
        return VerifyReport(False, checked, checked + 1, reason, prev if checked else None)

    def log_read(self, request_id: str, caller: str, role: str) -> None:
        """Record that ``caller`` (a key id) with ``role`` read the record of ``request_id``."""
        _text("request_id", request_id)
        _text("caller", caller)
        if role not in vocab.ROLES:
            raise InvalidField("role", vocab.ROLES, role)
        with writing(self.engine) as conn:
            conn.execute(
                audit_reads.insert().values(request_id=request_id, caller=caller, role=role, read_at=utcnow())
            )

    def reads(self, request_id: str) -> list[AuditRead]:
        """Who read the record of ``request_id``, oldest first."""
        table = audit_reads
        query = (
            sa.select(table.c.request_id, table.c.caller, table.c.role, table.c.read_at)
            .where(table.c.request_id == request_id)
            .order_by(table.c.read_id)
        )
        with self.engine.connect() as conn:
            return [AuditRead(*row) for row in conn.execute(query)]

    def _lock(self, cursor: Any) -> None:
        """On PostgreSQL, one appender at a time per schema until commit (SQLite: BEGIN IMMEDIATE did it)."""
        if self.engine.dialect.name == "postgresql":
            cursor.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext(current_schema()))")

    def _page(self, after: int, last: int) -> list[Any]:
        query = (
            sa.select(audit_log)
            .where(audit_log.c.seq > after, audit_log.c.seq <= last)
            .order_by(audit_log.c.seq)
            .limit(PAGE)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))


def _prepared(record: object) -> tuple[str, int | None, str]:
    """request_id, member_id and the canonical JSON of a record, after checking them."""
    if not isinstance(record, Mapping):
        raise InvalidField("record", "a JSON object (a dict)", type(record).__name__)
    request_id = _text("request_id", record.get("request_id"))
    member_id = record.get("member_id")
    if member_id is not None and (isinstance(member_id, bool) or not isinstance(member_id, int)):
        raise InvalidField("member_id", "an integer or None", member_id)
    try:
        text = canonical_json(record)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        expected = "JSON-serialisable with str keys, no NaN or infinity"
        raise InvalidField("record", expected, str(exc)) from None
    return request_id, member_id, text


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX:
        raise InvalidField(field, f"a non-empty string of at most {ID_MAX} characters", value)
    return value


def _link_problem(row: Any, seq: int, prev: str) -> str | None:
    """Why stored ``row`` is not record ``seq`` following a record that hashes to ``prev``, if so."""
    if row.seq != seq:
        return f"record {seq} is missing: the next stored record is {row.seq}"
    if row.prev_hash != prev:
        return (
            f"record {seq} names {row.prev_hash[:12]} as the previous hash; "
            f"record {seq - 1} hashes to {prev[:12]}"
        )
    expected = chain_hash(prev, row.seq, row.created_at, row.request_id, row.member_id, row.record)
    if row.hash != expected:
        return f"record {seq} was altered: it hashes to {expected[:12]}, not to the stored {row.hash[:12]}"
    return None


def _entry(row: Any) -> AuditEntry:
    record = json.loads(row.record)
    return AuditEntry(row.seq, row.request_id, row.member_id, row.created_at, record, row.prev_hash, row.hash)


class GroupCommitter:
    """Appends from many request threads, committed together by one writer thread.

    Each caller waits until the transaction holding its record has committed, so an answer is
    never sent before its audit record is stored; under load, several records share one
    transaction (one lock, one commit) instead of queueing for the lock one by one.
    """

    def __init__(self, log: AuditLog, max_batch: int = 64) -> None:
        self.log = log
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Mapping[str, Any], Future[AuditEntry]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="audit-writer", daemon=True).start()

    def append(self, record: Mapping[str, Any], timeout: float = 30.0) -> AuditEntry:
        done: Future[AuditEntry] = Future()
        self._queue.put((record, done))
        return done.result(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[tuple[Mapping[str, Any], Future[AuditEntry]]]) -> None:
        try:
            entries = self.log.append_many([record for record, _ in batch])
        except Exception:  # one bad record must not fail the others: retry them one by one
            for record, done in batch:
                try:
                    done.set_result(self.log.append(record))
                except Exception as exc:
                    done.set_exception(exc)
            return
        for (_, done), entry in zip(batch, entries, strict=True):
            done.set_result(entry)
