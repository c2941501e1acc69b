"""The consent registry of COMPLIANCE.md: append-only events, and the check that reads them.

:func:`check` is "deny unless allowed". Where COMPLIANCE.md leaves room, it reads the rules so:

- **Current state** of a (purpose, channel): among the events in effect at ``at``
  (``effective_from <= at``), the one captured last (ties: the higher event id). Capture order
  is the order of the member's choices: a paper grant posted before an in-app withdrawal but
  processed after it does not undo the withdrawal, and a far-future ``effective_from`` cannot
  outrank later events. If that event has expired, nothing is in force for the pair: an older
  event is not revived.
- **Purpose level** (``channel='all'``) events give or refuse the purpose itself, whatever the
  channel. **Channel level** events are that channel's opt-in (``granted``) or refusal (any
  other decision); they never grant the purpose (a member may accept e-mails yet refuse the
  prevention programme).
- The rules apply in COMPLIANCE.md's order; the first that denies gives the reason:
  1. a purpose-level ``withdrawn``, ``objected`` or ``no_other_offers`` in force denies
     (``WITHDRAWN``, ``OBJECTED``, ``NO_OTHER_OFFERS``) whatever the grants. A health-data offer
     is an offer: the ``offers`` state is read first and its refusals stop it too (so does a
     ``denied`` recorded for ``offers``, as ``NO_CONSENT``);
  2. ``prevention`` and ``offers_health_data`` need a purpose-level grant in force
     (``NO_CONSENT``, ``HEALTH_DATA_NOT_CONSENTED``);
  3. both commercial purposes are for adults (``MINOR``) not flagged vulnerable (``VULNERABLE``);
  4. a channel-level refusal in force denies that channel (``CHANNEL_NOT_PERMITTED``), ``app``
     and ``advisor`` included; ``push``, ``email``, ``sms`` and ``phone`` also need a
     channel-level grant in force. For a health-data offer the channel opt-in may be given under
     ``offers_health_data`` or ``offers`` (it is the opt-in to commercial messages; the health
     data consent is the purpose-level grant), and a refusal under either stops it.
- ``events_used``: the refusal that denied; the lapsed or denying purpose-level event behind a
  missing grant, if any; or, when allowed, the grants that allowed it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pyarrow.dataset as pds
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.tables import CONSENT_EVENTS, arrow_schema
from nba import vocab
from nba.errors import DataError, InvalidField
from serving.db import BEGIN_OPTION, as_utc, consent_events, reader_for, utcnow, writing

ALL: Final = "all"
GRANTED: Final = "granted"
REFUSALS: Final = {
    "withdrawn": vocab.WITHDRAWN,
    "objected": vocab.OBJECTED,
    "no_other_offers": vocab.NO_OTHER_OFFERS,
}
"""Purpose-level decisions that override any grant, and their reason codes."""
MISSING_GRANT: Final = {"prevention": vocab.NO_CONSENT, "offers_health_data": vocab.HEALTH_DATA_NOT_CONSENTED}
ACTOR_MAX: Final = 200
IMPORT_BATCH: Final = 50_000
COLUMNS: Final = CONSENT_EVENTS.column_names
VOCABULARY: Final = {
    "purpose": vocab.PURPOSES,
    "channel": vocab.CHANNELS,
    "decision": vocab.CONSENT_DECISIONS,
    "notice_version": vocab.NOTICE_VERSIONS,
    "source": vocab.CONSENT_SOURCES,
}


@dataclass(frozen=True)
class ConsentEvent:
    """One consent event as recorded; datetimes are timezone-aware UTC."""

    event_id: int
    member_id: int
    purpose: str
    channel: str
    decision: str
    notice_version: str
    source: str
    actor: str
    captured_at: dt.datetime
    effective_from: dt.datetime
    expires_at: dt.datetime | None

    def in_force(self, at: dt.datetime) -> bool:
        """In effect at ``at`` and not expired."""
        return self.effective_from <= at and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True)
class Verdict:
    """Whether one purpose may be used on one channel, why not, and the events that decided it."""

    allowed: bool
    reason: str | None
    events_used: tuple[int, ...]


class ConsentStore:
    """Append and read a member's consent events; bulk-load a synthetic world's history."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = reader_for(engine)
        self._events_sql = self._reader.sql(
            f"SELECT {', '.join(COLUMNS)} FROM consent_events WHERE member_id = ? "
            "ORDER BY captured_at, event_id"
        )

    def append(
        self,
        member_id: int,
        purpose: str,
        channel: str,
        decision: str,
        notice_version: str,
        source: str,
        actor: str,
        effective_from: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> ConsentEvent:
        """Record one event; the server sets ``captured_at`` (``now``), which nothing may precede.

        Raises InvalidField naming the first field that is not allowed.
        """
        captured = _aware("now", now) if now is not None else utcnow()
        start, end = _validity(captured, effective_from, expires_at)
        event = ConsentEvent(
            event_id=0,  # given by the database
            member_id=_member_id(member_id),
            purpose=_one_of("purpose", purpose, vocab.PURPOSES),
            channel=_one_of("channel", channel, vocab.CHANNELS),
            decision=_one_of("decision", decision, vocab.CONSENT_DECISIONS),
            notice_version=_one_of("notice_version", notice_version, vocab.NOTICE_VERSIONS),
            source=_one_of("source", source, vocab.CONSENT_SOURCES),
            actor=_actor(actor),
            captured_at=captured,
            effective_from=start,
            expires_at=end,
        )
        values = {name: getattr(event, name) for name in COLUMNS[1:]}
        insert = consent_events.insert().values(**values).returning(consent_events.c.event_id)
        with writing(self.engine) as conn:
            event_id = conn.execute(insert).scalar_one()
        return dataclasses.replace(event, event_id=int(event_id))

    def events(self, member_id: int) -> list[ConsentEvent]:
        """The member's events in the order they were captured (one indexed query, read on every
        ``/recommend``, so straight through the driver)."""
        rows = self._reader.fetch(self._events_sql, (operator.index(member_id),))
        return [_event(row) for row in rows]

    def import_world(self, data_dir: Path, on_progress: Callable[[int], None] | None = None) -> int:
        """Load a world's ``consent_events`` table; returns how many events were new.

        Idempotent per ``event_id``: an event already in the registry is kept as it is, and an
        event id already holding a different event is an error (nothing is imported then).
        The events are first staged in a temporary table, which blocks no one; the merge then
        holds the write lock (SQLite) or blocks consent appends (PostgreSQL) for a few seconds
        per million events. ``on_progress(n)`` is called after each batch of ``n`` events is read.
        """
        dataset = _consent_dataset(Path(data_dir))
        advance = on_progress or (lambda n: None)
        with self.engine.connect() as conn:
            staging = _Staging.for_dialect(conn)
            try:
                with conn.begin():  # SQLite: deferred, the temporary table locks nothing
                    staging.create()
                    for batch in _batches(dataset):
                        staging.write(batch)
                        advance(batch.num_rows)
                conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
                with conn.begin():
                    staging.lock()
                    _refuse_conflicts(conn, staging.table)
                    return staging.merge()
            finally:
                staging.drop()


def _event(row: Sequence[Any]) -> ConsentEvent:
    """A stored row as an event: its datetimes read back as aware UTC, as SQLAlchemy would."""
    event_id, member_id, purpose, channel, decision, notice, source, actor, captured, start, end = row
    return ConsentEvent(
        event_id, member_id, purpose, channel, decision, notice, source, actor,
        as_utc(captured), as_utc(start), None if end is None else as_utc(end),
    )  # fmt: skip


# -- the check -------------------------------------------------------------------------------------


def check(
    events: Iterable[ConsentEvent],
    purpose: str,
    channel: str,
    at: dt.datetime,
    *,
    adult: bool,
    vulnerable: bool,
) -> Verdict:
    """May ``purpose`` be used on ``channel`` at ``at``, given one member's ``events``? (module doc)"""
    _one_of("purpose", purpose, vocab.PURPOSES)
    _one_of("channel", channel, vocab.CONTACT_CHANNELS)
    state = current_state(events, _aware("at", at))
    return (
        _refused(state, purpose, at)
        or _not_granted(state, purpose, at)
        or _not_for_member(purpose, adult, vulnerable)
        or _channel(state, purpose, channel, at)
    )


State = dict[tuple[str, str], ConsentEvent]


def current_state(events: Iterable[ConsentEvent], at: dt.datetime) -> State:
    """Per (purpose, channel), the event in effect at ``at`` captured last (it may have expired)."""
    latest: dict[tuple[str, str], ConsentEvent] = {}
    for event in events:
        if event.effective_from > at:
            continue
        key = (event.purpose, event.channel)
        seen = latest.get(key)
        if seen is None or (event.captured_at, event.event_id) > (seen.captured_at, seen.event_id):
            latest[key] = event
    return latest


def _scope(purpose: str) -> tuple[str, ...]:
    """The purposes whose state a check of ``purpose`` reads: a health-data offer is an offer."""
    return ("offers", purpose) if purpose == "offers_health_data" else (purpose,)


def _deny(reason: str, *events: ConsentEvent | None) -> Verdict:
    return Verdict(False, reason, tuple(e.event_id for e in events if e is not None))


def _refused(state: State, purpose: str, at: dt.datetime) -> Verdict | None:
    """Rule 1: a purpose-level refusal in force."""
    for scope in _scope(purpose):
        event = state.get((scope, ALL))
        if event is None or not event.in_force(at):
            continue
        if event.decision in REFUSALS:
            return _deny(REFUSALS[event.decision], event)
        if scope == "offers" and event.decision == "denied":
            return _deny(vocab.NO_CONSENT, event)
    return None


def _not_granted(state: State, purpose: str, at: dt.datetime) -> Verdict | None:
    """Rule 2: consent-based purposes need a purpose-level grant in force."""
    if purpose not in vocab.CONSENT_BASED_PURPOSES:
        return None
    event = state.get((purpose, ALL))
    if event is not None and event.decision == GRANTED and event.in_force(at):
        return None
    return _deny(MISSING_GRANT[purpose], event)


def _not_for_member(purpose: str, adult: bool, vulnerable: bool) -> Verdict | None:
    """Rule 3: commercial offers only to adults not flagged vulnerable."""
    if purpose not in vocab.COMMERCIAL_PURPOSES:
        return None
    if not adult:
        return _deny(vocab.MINOR)
    return _deny(vocab.VULNERABLE) if vulnerable else None


def _channel(state: State, purpose: str, channel: str, at: dt.datetime) -> Verdict:
    """Rule 4: no refusal of the channel in force; opt-in channels need a grant in force."""
    scopes = _scope(purpose)
    found = [state.get((scope, channel)) for scope in scopes]
    events = [e for e in found if e is not None]
    in_force = [e for e in events if e.in_force(at)]
    refusals = [e for e in in_force if e.decision != GRANTED]
    if refusals:
        return _deny(vocab.CHANNEL_NOT_PERMITTED, *refusals)
    grants = [e for e in in_force if e.decision == GRANTED]
    if channel in vocab.OPT_IN_CHANNELS and not grants:
        return _deny(vocab.CHANNEL_NOT_PERMITTED, *events)
    purpose_grants = [state.get((scope, ALL)) for scope in scopes]
    used = [e for e in purpose_grants if e is not None and e.decision == GRANTED and e.in_force(at)]
    return Verdict(True, None, tuple(e.event_id for e in used + grants))


# -- validation ------------------------------------------------------------------------------------


def _one_of(field: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidField(field, tuple(allowed), value)
    return value


def _aware(field: str, value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        received = value.isoformat() if isinstance(value, dt.datetime) else value
        raise InvalidField(field, "a timezone-aware datetime", received)
    return value.astimezone(dt.UTC)


def _member_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidField("member_id", "a positive integer", value)
    return int(value)


def _actor(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > ACTOR_MAX:
        raise InvalidField("actor", f"a non-empty string of at most {ACTOR_MAX} characters", value)
    return value


def _validity(
    captured: dt.datetime, effective_from: dt.datetime | None, expires_at: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime | None]:
    """``effective_from`` (default: captured) not before capture; ``expires_at`` after it."""
    start = captured if effective_from is None else _aware("effective_from", effective_from)
    if start < captured:
        expected = f"at or after captured_at {captured.isoformat()} (no back-dating)"
        raise InvalidField("effective_from", expected, start.isoformat())
    end = None if expires_at is None else _aware("expires_at", expires_at)
    if end is not None and end <= start:
        raise InvalidField("expires_at", f"after effective_from {start.isoformat()}", end.isoformat())
    return start, end


# -- import ----------------------------------------------------------------------------------------


def _consent_dataset(data: Path) -> pds.Dataset:
    """``DIR/consent_events.parquet`` or a folder ``DIR/consent_events/`` of Parquet parts."""
    if not data.is_dir():
        raise DataError(f"--data must be a folder holding the source tables; got {str(data)!r}")
    file, folder = data / f"{CONSENT_EVENTS.name}.parquet", data / CONSENT_EVENTS.name
    paths = [file] if file.is_file() else sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not paths:
        raise DataError(
            f"table {CONSENT_EVENTS.name!r}: expected {file} or a folder {folder}/ of Parquet files; "
            "found neither"
        )
    dataset = pds.dataset([str(p) for p in paths], format="parquet")
    missing = [c for c in COLUMNS if c not in dataset.schema.names]
    if missing:
        raise DataError(
            f"table {CONSENT_EVENTS.name!r} lacks the columns {missing}; expected {list(COLUMNS)}, "
            f"got {dataset.schema.names}"
        )
    return dataset


def _batches(dataset: pds.Dataset) -> Iterator[pa.Table]:
    """Batches cast to the contract's types, after checking the values the registry relies on."""
    schema = arrow_schema(CONSENT_EVENTS)
    for batch in dataset.to_batches(columns=list(COLUMNS), batch_size=IMPORT_BATCH):
        table = pa.Table.from_batches([batch])
        try:
            table = table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            message = f"table {CONSENT_EVENTS.name!r} does not have the contract's types: {exc}"
            raise DataError(message) from None
        _check_values(table)
        yield table


def _check_values(table: pa.Table) -> None:
    for column in CONSENT_EVENTS.columns:
        values = table[column.name]
        if not column.nullable and values.null_count:
            raise DataError(
                f"table {CONSENT_EVENTS.name!r}, column {column.name!r}: expected no empty value; "
                f"got {values.null_count} in a batch of {table.num_rows:,} rows"
            )
        allowed = VOCABULARY.get(column.name)
        if allowed is not None:
            bad = pc.filter(values, pc.invert(pc.is_in(values, pa.array(allowed))))
            if len(bad):
                examples = pc.unique(bad).to_pylist()[:3]
                raise DataError(
                    f"table {CONSENT_EVENTS.name!r}, column {column.name!r}: expected one of "
                    f"{list(allowed)}; got {len(bad)} other values, for example {examples}"
                )
    for name in ("event_id", "member_id"):
        low = pc.min(table[name]).as_py()
        if low is not None and low < 1:
            raise DataError(f"table {CONSENT_EVENTS.name!r}, column {name!r}: expected ids >= 1; got {low}")


class _Staging:
    """A temporary table the import fills, then merges into ``consent_events``."""

    table = "consent_import"
    temp = ""  # the schema of temporary tables

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @classmethod
    def for_dialect(cls, conn: Connection) -> _Staging:
        return _SqliteStaging(conn) if conn.dialect.name == "sqlite" else _PostgresStaging(conn)

    def create(self) -> None:
        raise NotImplementedError

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def lock(self) -> None:
        """Keep other writers of ``consent_events`` out until the merge commits."""

    def merge(self) -> int:
        """Insert the staged events not yet in the registry; how many were inserted."""
        columns = ", ".join(COLUMNS)
        inserted = self.conn.exec_driver_sql(
            f"INSERT INTO consent_events ({columns}) SELECT {columns} FROM {self.table} "
            "WHERE true ON CONFLICT (event_id) DO NOTHING"
        ).rowcount
        return int(inserted)

    def drop(self) -> None:
        """Drop the staging table, if the connection still works."""
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
            with self.conn.begin():
                self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.temp}.{self.table}")
        except sa.exc.DBAPIError:  # a broken connection takes its temporary tables with it
            self.conn.invalidate()

    def _duplicates(self, exc: Exception) -> DataError:
        return DataError(
            f"table {CONSENT_EVENTS.name!r}: expected each event_id once; got one more than once "
            f"({str(exc).splitlines()[0]})"
        )


class _SqliteStaging(_Staging):
    temp = "temp"

    def create(self) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{self.table}")
        self.conn.exec_driver_sql(
            f"CREATE TEMP TABLE {self.table} (event_id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL, "
            "purpose TEXT, channel TEXT, decision TEXT, notice_version TEXT, source TEXT, actor TEXT, "
            "captured_at TEXT, effective_from TEXT, expires_at TEXT)"
        )

    def write(self, table: pa.Table) -> None:
        """Timestamps as the text SQLAlchemy stores on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC)."""
        text = _utc_text(table)
        columns: list[list[Any]] = [text[name].to_pylist() for name in COLUMNS]
        placeholders = ", ".join("?" * len(COLUMNS))
        insert = f"INSERT INTO {self.table} VALUES ({placeholders})"
        driver = self.conn.connection.driver_connection
        try:
            driver.executemany(insert, zip(*columns, strict=True))  # type: ignore[union-attr]
        except sqlite3.IntegrityError as exc:
            raise self._duplicates(exc) from None


class _PostgresStaging(_Staging):
    temp = "pg_temp"

    def create(self) -> None:
        self.conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")  # how the staged text is read
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{self.table}")
        self.conn.exec_driver_sql(
            f"CREATE TEMP TABLE {self.table} (event_id BIGINT PRIMARY KEY, member_id BIGINT NOT NULL, "
            "purpose TEXT, channel TEXT, decision TEXT, notice_version TEXT, source TEXT, actor TEXT, "
            "captured_at TIMESTAMPTZ, effective_from TIMESTAMPTZ, expires_at TIMESTAMPTZ)"
        )

    def lock(self) -> None:
        """Appends wait for the merge, so their ids come from the sequence moved past the imported ones."""
        self.conn.exec_driver_sql("LOCK TABLE consent_events IN SHARE ROW EXCLUSIVE MODE")

    def write(self, table: pa.Table) -> None:
        """CSV written by Arrow, timestamps as UTC text (the session is in UTC); an empty field is NULL."""
        buffer = io.BytesIO()
        pa.csv.write_csv(_utc_text(table), buffer, pa.csv.WriteOptions(include_header=False))
        copy_sql = f"COPY {self.table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT CSV)"
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(copy_sql) as copy:
                copy.write(buffer.getbuffer())
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != "23505":  # unique_violation
                raise
            raise self._duplicates(exc) from None
        finally:
            cursor.close()

    def merge(self) -> int:
        inserted = super().merge()
        self.conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('consent_events', 'event_id'), max(event_id)) "
            "FROM consent_events HAVING max(event_id) IS NOT NULL"
        )
        return inserted


def _utc_text(table: pa.Table) -> pa.Table:
    """Timestamps as UTC wall-clock text with microseconds, as SQLAlchemy stores them on SQLite."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = table[field.name].cast(pa.timestamp("us")).cast(pa.string())
            table = table.set_column(index, field.name, text)
    return table


def _refuse_conflicts(conn: Connection, staging: str) -> None:
    """An event id already in the registry must hold the same event."""
    compared = ("member_id", "purpose", "channel", "decision", "captured_at")
    clash = (
        f"FROM {staging} s JOIN consent_events e ON e.event_id = s.event_id "
        f"WHERE {' OR '.join(f'e.{c} <> s.{c}' for c in compared)}"
    )
    count = conn.exec_driver_sql(f"SELECT count(*) {clash}").scalar_one()
    if count:
        examples = conn.exec_driver_sql(f"SELECT s.event_id {clash} ORDER BY s.event_id LIMIT 3").scalars()
        raise DataError(
            f"table {CONSENT_EVENTS.name!r}: {count} event ids are already in the consent registry for "
            f"other events, for example {list(examples)}; expected a re-import to hold the same events "
            "(nothing was imported)"
        )
