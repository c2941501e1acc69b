"""The serving tables: consent registry, decision audit log, its reads, feedback and API keys.

One SQLAlchemy URL (``NBA_DATABASE_URL``) names a SQLite file or a PostgreSQL database (psycopg 3);
the online profile store of :mod:`features.store` lives in the same database under other names
(``online_loads``, ``online_profiles*``).

The two reads every ``/recommend`` makes (a member's consent events and recent feedback) go
straight to the driver through :class:`Reader`: autocommit connections, one statement each, no
SQLAlchemy execution machinery in between.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
crash or kill of any process (the audit log promises that every answered decision is
recorded); only an operating-system crash or power loss may lose the last commits before a
checkpoint, which is why production runs on PostgreSQL, whose commits are flushed. It waits
up to 30 s for a lock; writers of this project first queue on an OS file lock
(:func:`writer_turn`), which wakes them as soon as the last writer is done. Reads begin
deferred transactions, which never block the writer; writes go through :func:`writing`, which
begins ``BEGIN IMMEDIATE`` so concurrent writers queue for the lock instead of failing. On
PostgreSQL both are ordinary transactions.

``consent_events``, ``audit_log`` and ``audit_reads`` are append-only: triggers refuse UPDATE and
DELETE (and TRUNCATE on PostgreSQL). A purge at the end of retention drops them first.
Datetimes are stored and returned in UTC, timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from features.store import ReaderPool, release
from nba.errors import ConfigError
from nba.settings import get_settings

log = logging.getLogger("nba.serving")
SQLITE_PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # with WAL: a commit survives any process crash (see above)
    "PRAGMA busy_timeout=30000",
)
BEGIN_OPTION: Final = "nba_sqlite_begin"  # execution option read by the SQLite "begin" hook
SCHEMA_LOCK: Final = 0x6E62615F73657276  # PostgreSQL advisory lock taken while creating the tables
APPEND_ONLY: Final = ("consent_events", "audit_log", "audit_reads")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware datetime, stored in UTC (naive text on SQLite, timestamptz on PostgreSQL)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime; got the naive {value.isoformat()}")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else as_utc(value)


metadata = sa.MetaData()

consent_events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("event_id", ID, primary_key=True, autoincrement=True),
    sa.Column("member_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("notice_version", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("captured_at", UtcDateTime, nullable=False),
    sa.Column("effective_from", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime),
    sqlite_autoincrement=True,  # an event id is never reused, even after a purge
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", ID, primary_key=True, autoincrement=False),
    sa.Column("request_id", sa.String(200), nullable=False, unique=True),
    sa.Column("member_id", sa.BigInteger, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_reads = sa.Table(
    "audit_reads",
    metadata,
    sa.Column("read_id", ID, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(200), nullable=False, index=True),
    sa.Column("caller", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("read_at", UtcDateTime, nullable=False),
)

feedback_events = sa.Table(
    "feedback_events",
    metadata,
    sa.Column("feedback_id", ID, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(200), nullable=False),
    sa.Column("member_id", sa.BigInteger, nullable=False),
    sa.Column("action_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index("ix_feedback_events_member_at", "member_id", "at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)

experiment_settings = sa.Table(
    "experiment_settings",
    metadata,
    sa.Column("setting_id", ID, primary_key=True, autoincrement=True),
    sa.Column("challenger_share", sa.Float, nullable=False),
    sa.Column("control_share", sa.Float, nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("set_at", UtcDateTime, nullable=False),
)


def open_engine(url: str | None = None, autocheckpoint: bool = True) -> Engine:
    """An engine on ``url`` (default: the ``NBA_DATABASE_URL`` setting), its tables created if missing.

    ``autocheckpoint=False`` (SQLite): a commit never copies the WAL into the database file;
    whoever asks for it runs a :class:`Checkpointer` instead (the service does)."""
    parsed = checked_url(url if url is not None else get_settings().database_url)
    if parsed.get_backend_name() == "sqlite":
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        _configure_sqlite(engine)
        if not autocheckpoint:
            sa.event.listen(engine, "connect", _no_autocheckpoint)
    else:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    create_schema(engine)
    return engine


def checked_url(text: str) -> URL:
    """``text`` as a URL for SQLite (a file) or PostgreSQL through psycopg 3."""
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise ConfigError(f"the database URL must be a SQLAlchemy URL; got {text!r}") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigError(f"the database URL must name a SQLite file; got the in-memory {text!r}")
    if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigError(
            "the database URL must start with sqlite:///, postgresql:// or postgresql+psycopg://; "
            f"got {url.render_as_string(hide_password=True)!r}"
        )
    return url


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """On a SQLite file, this process's turn to write: an exclusive ``flock`` on ``<file>-writer.lock``.

    SQLite makes a writer that finds the database locked sleep and retry (1, 2, 5, 10 ... 100 ms
    apart): with two service workers appending audit records, each append found the other's
    lock often and slept far longer than the lock was held (at concurrency 8 the CPUs stood
    half idle and p50 was 30 ms, measured). The kernel wakes a ``flock`` waiter as soon as the
    lock is released. The lock file is opened for each turn, so threads of one process queue
    too; writers that do not take it (another program) still meet SQLite's busy timeout.
    Nothing on PostgreSQL, whose lock waits already wake on release.
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    held: set[str] = _TURNS.__dict__.setdefault("held", set())
    if not path or path in held:  # a write nested in another of this thread's writes
        yield
        return
    fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
    finally:
        os.close(fd)  # releases the lock


_TURNS = threading.local()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: ``BEGIN IMMEDIATE`` on SQLite (in this process's
    :func:`writer_turn`); committed on exit, rolled back on error."""
    with writer_turn(engine), engine.connect() as conn:
        conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn


class Reader:
    """Driver connections in autocommit mode, each lent to one thread for one statement.

    A read through SQLAlchemy Core pays for a pooled connection, a ``BEGIN``, the statement's
    cache key, the result machinery and a ``ROLLBACK``: a member's consent events took 0.36-0.41 ms
    of CPU that way on the 2-core serving machine, their recent feedback 0.38 ms; through here,
    0.055 ms and 0.015 ms. Reads go through the online store's :class:`features.store.ReaderPool`
    (psycopg prepares a statement once it has run it five times), which tries a read once more on
    a new connection when an idle one failed (the server may have dropped it). Statements are written
    with ``?`` placeholders (:meth:`sql` adapts them). One reader per engine (:func:`reader_for`),
    closed when the engine is garbage-collected.
    """

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self._engine = sa.create_engine(engine.url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        if self.dialect == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_connect)
        self._pool = ReaderPool(self._engine, lambda: RuntimeError("this Reader is closed"), retry_lost=True)

    def sql(self, statement: str) -> str:
        """``statement`` with the driver's placeholders (``?`` for sqlite3, ``%s`` for psycopg)."""
        return driver_sql(self._engine, statement)

    def time_param(self, moment: dt.datetime) -> Any:
        """``moment`` as the driver compares it with a stored :class:`UtcDateTime`."""
        return driver_time(self._engine, moment)

    def fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """All rows of one statement (``sql`` as :meth:`sql` returned it)."""
        return self._pool.fetch(sql, params)

    def close(self) -> None:
        self._pool.close()
        self._engine.dispose()


def driver_sql(engine: Engine, statement: str) -> str:
    """``statement``, written with ``?`` placeholders, in the driver's style (``%s`` for psycopg)."""
    return statement if engine.dialect.name == "sqlite" else statement.replace("?", "%s")


def driver_time(engine: Engine, moment: dt.datetime) -> Any:
    """``moment`` as the driver stores a :class:`UtcDateTime`: UTC text as SQLAlchemy writes it on
    SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``), an aware datetime on PostgreSQL."""
    value = UtcDateTime().process_bind_param(moment, engine.dialect)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if engine.dialect.name == "sqlite" and value else value


@contextmanager
def driver_writing(engine: Engine) -> Iterator[Any]:
    """:func:`writing` straight on the driver: a DBAPI cursor in a transaction (``BEGIN IMMEDIATE``
    on SQLite), committed on exit, rolled back on error. For the audit appends, where SQLAlchemy's
    execution machinery cost more than the statements while the write lock was held."""
    with writer_turn(engine):
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
        except BaseException:
            connection.close()
            raise
        try:
            if engine.dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            release(connection, cursor)


_READERS: weakref.WeakKeyDictionary[Engine, Reader] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def reader_for(engine: Engine) -> Reader:
    """The :class:`Reader` of ``engine``, made on first use and shared by its stores."""
    with _READERS_LOCK:
        reader = _READERS.get(engine)
        if reader is None:
            reader = _READERS[engine] = Reader(engine)
            weakref.finalize(engine, reader.close)
        return reader


def create_schema(engine: Engine) -> None:
    """The tables and their append-only triggers, if missing; concurrent callers wait for each other."""
    with writing(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        metadata.create_all(conn)
        if conn.dialect.name == "sqlite":
            _sqlite_triggers(conn)
        else:
            _postgres_triggers(conn)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: object) -> dt.datetime:
    """A datetime read back from either database, as an aware UTC datetime."""
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, durable commits; pysqlite's own transaction handling off, our BEGIN instead."""

    sa.event.listen(engine, "connect", _sqlite_connect)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(BEGIN_OPTION, 'DEFERRED')}")


def _no_autocheckpoint(dbapi_connection: Any, record: object) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """Copies a SQLite database's WAL into its file every ``interval`` seconds, on its own thread.

    By default the commit that takes the WAL past 1,000 pages copies it, inside the commit: in
    the service that is the audit writer, so every request waiting for its audit record waited
    for the copy and its fsync too (p99 at concurrency 8: 66 ms with it, 53 ms without, one
    pair of runs on the 2-core machine). The service opens its engine with
    ``autocheckpoint=False`` and runs one of these. Checkpoints are PASSIVE: they never wait
    for, nor block, readers or writers; a WAL fully copied is reused from its start by the
    next writer, so it stays near what ``interval`` seconds of writes need. A failed checkpoint
    is logged and tried again at the next tick.
    """

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    @classmethod
    def for_engine(cls, engine: Engine, interval: float = 1.0) -> Checkpointer | None:
        """One for ``engine``'s SQLite file; None on PostgreSQL."""
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        return cls(path, interval) if path else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import sqlite3

        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error as exc:
                    log.warning("checkpoint of %s failed: %s", self.path, exc)
        finally:
            connection.close()


def _sqlite_connect(dbapi_connection: Any, record: object) -> None:
    dbapi_connection.isolation_level = None
    for pragma in SQLITE_PRAGMAS:
        dbapi_connection.execute(pragma)


def _sqlite_triggers(conn: Connection) -> None:
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )


def _postgres_triggers(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION nba_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP; END $$"
    )
    for table in APPEND_ONLY:
        existing = conn.exec_driver_sql(
            f"SELECT tgname FROM pg_trigger WHERE tgrelid = '{table}'::regclass"
        ).scalars()
        wanted = {
            f"{table}_no_change": "BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW",
            f"{table}_no_truncate": "BEFORE TRUNCATE ON {table} FOR EACH STATEMENT",
        }
        for name in wanted.keys() - set(existing):
            when = wanted[name].format(table=table)
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION nba_append_only()")
