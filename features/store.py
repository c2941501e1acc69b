"""The online profile store: member profiles published by the feature pipeline, read one at a time.

Layout (SQLite file or PostgreSQL, from one SQLAlchemy URL):

- ``online_loads``: one row per publish (as-of date, feature set version, member count, the
  column list of its payloads, and a status: ``loading``, ``current``, ``retired``, ``failed``);
- ``online_profiles_<load_id>``: one table per load, ``member_id`` primary key and a compact
  payload (:mod:`features.profile_codec`);
- ``online_profiles``: a view naming the current load's table, the pointer readers go through.

A publish writes a new table that no reader can see, then in one transaction marks its load
current, retires the previous one and points the view at the new table; retired tables are
dropped afterwards. A read is one SQL statement on the view, so it sees one load entirely,
the previous or the new one, never a mix (SQLite WAL and PostgreSQL MVCC give each statement
one snapshot). A publish that fails part-way leaves the previous load current; its table is
dropped at once, or by the next publish if the process died. One publisher at a time: a
publish that starts abandons any load still ``loading`` (a crashed one, or one running
elsewhere, which then fails at its switch and never becomes current).

A table per load, rather than one table keyed by (load_id, member_id): a lookup is one
primary-key seek, and retiring a load is a DROP TABLE instead of deleting a million rows
(which on PostgreSQL leaves as many dead rows for vacuum). SQLite keeps the pages it frees
and reuses them for the next load: the file settles near twice the size of one load.

Reads go straight to the driver (``sqlite3`` or ``psycopg``) through a small pool of reader
connections in autocommit mode: a read borrows one connection for one statement, so several
threads of a process can read at once and no connection is used by two threads together.
The driver caches the prepared statement (psycopg prepares it server-side after 5 uses);
the same fetch through SQLAlchemy ``text()`` costs several times more (``benchmarks/store.py``).
Writes go through SQLAlchemy; rows are inserted with ``executemany`` in batches on SQLite
and with binary ``COPY`` on PostgreSQL.

A value comes back with the type of its column in the published frame: integers in a float64
column come back as floats, so give integer features with missing values the ``Int64`` dtype.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from features.profile_codec import ProfileCodec
from nba.errors import ConfigError, DataError, StoreError
from nba.settings import get_settings

log = logging.getLogger(__name__)

MEMBER_ID: Final = "member_id"
VIEW: Final = "online_profiles"
BATCH_ROWS: Final = 5_000  # rows encoded and inserted together (one SQLite transaction each)
CACHED_LOADS: Final = 8
SCHEMA_LOCK: Final = 0x6E62615F73746F72  # PostgreSQL advisory lock key taken while creating the tables
SQLITE_PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # durable at each checkpoint; WAL keeps the file consistent
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_size_limit=67108864",  # the WAL file shrinks back to 64 MB after a big load
)

metadata = sa.MetaData()
loads = sa.Table(
    "online_loads",
    metadata,
    sa.Column("load_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("feature_set_version", sa.String(200), nullable=False),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True)),
    sa.Column("dropped", sa.Boolean, nullable=False, default=False),
    sa.Column("codec", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)
Rows = list[tuple[int, bytes]]  # (member_id, payload)
LOAD_COLUMNS: Final = "load_id, as_of, feature_set_version, members, loaded_at, codec"


@dataclass(frozen=True)
class LoadInfo:
    """One publish of the profiles; ``loaded_at`` is when it became current (UTC)."""

    load_id: int
    as_of: dt.date
    feature_set_version: str
    members: int
    loaded_at: dt.datetime


@dataclass(frozen=True)
class StoredProfile:
    """A member's features as published: ints, floats, bools, str (dates as ISO str) or None."""

    member_id: int
    values: dict[str, object]
    as_of: dt.date
    feature_set_version: str
    load_id: int


def profiles_table(load_id: int) -> str:
    return f"online_profiles_{int(load_id)}"


@dataclass(frozen=True)
class _Sql:
    """The statements that differ between SQLite and PostgreSQL."""

    get: str
    get_many: str
    load: str
    current: str
    empty_view: str
    point_view: tuple[str, ...]  # formatted with load_id and table

    @classmethod
    def for_dialect(cls, name: str) -> _Sql:
        p = "?" if name == "sqlite" else "%s"
        loads_where = f"SELECT {LOAD_COLUMNS} FROM online_loads WHERE"
        common = {
            "get": f"SELECT load_id, payload FROM {VIEW} WHERE member_id = {p}",
            "load": f"{loads_where} load_id = {p}",
            "current": f"{loads_where} status = 'current'",
        }
        if name == "sqlite":
            return cls(
                **common,
                get_many=f"SELECT load_id, member_id, payload FROM {VIEW} "
                "WHERE member_id IN (SELECT value FROM json_each(?))",
                empty_view=f"CREATE VIEW {VIEW} AS SELECT NULL AS load_id, NULL AS member_id, "
                "NULL AS payload WHERE 0",
                point_view=(
                    f"DROP VIEW IF EXISTS {VIEW}",
                    f"CREATE VIEW {VIEW} AS SELECT {{load_id}} AS load_id, member_id, payload FROM {{table}}",
                ),
            )
        return cls(
            **common,
            get_many=f"SELECT load_id, member_id, payload FROM {VIEW} WHERE member_id = ANY(%s)",
            empty_view=f"CREATE VIEW {VIEW} AS SELECT CAST(NULL AS INTEGER) AS load_id, "
            "CAST(NULL AS BIGINT) AS member_id, CAST(NULL AS BYTEA) AS payload WHERE FALSE",
            point_view=(  # same column types as the empty view, as CREATE OR REPLACE requires
                f"CREATE OR REPLACE VIEW {VIEW} AS SELECT CAST({{load_id}} AS INTEGER) AS load_id, "
                "member_id, payload FROM {table}",
            ),
        )


class ReaderPool:
    """Reader connections in autocommit mode, each lent to one thread for one statement.

    A read borrows an idle driver connection (``sqlite3`` or ``psycopg``), runs one statement to
    its end (so SQLite ends the statement's read snapshot) and gives the connection back. A
    connection that fails is closed, not reused; with ``retry_lost``, a read that failed on an
    idle connection the server may have dropped is tried once more on a new one. ``closed``
    makes the error a read after :meth:`close` raises. Used by :class:`OnlineStore` and by
    ``serving.db.Reader``.
    """

    def __init__(self, engine: Engine, closed: Callable[[], Exception], retry_lost: bool = False) -> None:
        self._engine = engine
        self._closed_error = closed
        dbapi = engine.dialect.loaded_dbapi
        self._lost: tuple[type[Exception], ...] = (
            (dbapi.OperationalError, dbapi.InterfaceError) if retry_lost else ()
        )
        self._idle: list[tuple[Any, Any]] = []  # (pooled connection, its driver cursor)
        self._lock = threading.Lock()
        self._closed = False

    def fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """All rows of one statement."""
        with self._lock:
            if self._closed:
                raise self._closed_error()
            pair = self._idle.pop() if self._idle else None
        if pair is None:
            pair = self._connect()
            rows = self._run(pair, sql, params)
        else:
            try:
                rows = self._run(pair, sql, params)
            except self._lost:
                pair = self._connect()
                rows = self._run(pair, sql, params)
        with self._lock:
            if not self._closed:
                self._idle.append(pair)
                return rows
        pair[0].close()
        return rows

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection, cursor in idle:
            release(connection, cursor)

    def _connect(self) -> tuple[Any, Any]:
        connection = self._engine.raw_connection()
        return connection, connection.driver_connection.cursor()  # type: ignore[union-attr]

    @staticmethod
    def _run(pair: tuple[Any, Any], sql: str, params: tuple[object, ...]) -> list[Any]:
        try:
            pair[1].execute(sql, params)
            return list(pair[1].fetchall())
        except BaseException:
            release(*pair)
            raise


def release(connection: Any, cursor: Any) -> None:
    """Close the cursor while the connection is still ours, then hand the connection back: a
    cursor left to the garbage collector resets its statement on a connection the pool may have
    given to another thread by then (SQLite: "bad parameter or other API misuse")."""
    cursor.close()
    connection.close()


def _store_closed() -> StoreError:
    return StoreError("this OnlineStore is closed; open another with OnlineStore.from_url()")


class OnlineStore:
    """Publish member profiles atomically; read them one member (or a few) at a time."""

    def __init__(self, engine: Engine, read_engine: Engine) -> None:
        self._engine = engine
        self._read_engine = read_engine
        self._dialect = engine.dialect.name
        self._sql = _Sql.for_dialect(self._dialect)
        self._readers = ReaderPool(read_engine, _store_closed)
        self._loads: dict[int, tuple[LoadInfo, ProfileCodec]] = {}
        self._loads_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str | None = None) -> OnlineStore:
        """Open the store at ``url`` (default: the ``NBA_DATABASE_URL`` setting), creating its tables."""
        parsed = _checked_url(url if url is not None else get_settings().database_url)
        if parsed.get_backend_name() == "sqlite":
            Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed)
            read_engine = sa.create_engine(parsed, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
            _configure_sqlite(engine, read_engine)
        else:
            engine = sa.create_engine(parsed, pool_pre_ping=True)
            read_engine = sa.create_engine(parsed, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        store = cls(engine, read_engine)
        store._create_schema()
        return store

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection; reads in flight finish, later reads raise StoreError."""
        self._readers.close()
        self._engine.dispose()
        self._read_engine.dispose()

    # -- reads -------------------------------------------------------------------------------

    def get(self, member_id: int) -> StoredProfile | None:
        """The member's profile in the current load, or None if the load does not hold them."""
        member = operator.index(member_id)
        rows = self._readers.fetch(self._sql.get, (member,))
        if not rows:
            return None
        load_id, payload = rows[0]
        return self._profile(member, load_id, payload)

    def get_many(self, member_ids: Sequence[int]) -> dict[int, StoredProfile]:
        """Profiles of the members the current load holds, by member id, all from that one load."""
        members = sorted({operator.index(member) for member in member_ids})
        if not members:
            return {}
        param: object = json.dumps(members) if self._dialect == "sqlite" else members
        rows = self._readers.fetch(self._sql.get_many, (param,))
        return {member: self._profile(member, load_id, payload) for load_id, member, payload in rows}

    def current(self) -> LoadInfo | None:
        """The load readers see now, or None before the first publish."""
        rows = self._readers.fetch(self._sql.current, ())
        return self._remember(rows[0])[0] if rows else None

    def _profile(self, member_id: int, load_id: int, payload: bytes) -> StoredProfile:
        info, codec = self._loads.get(load_id) or self._load(load_id)
        return StoredProfile(member_id, codec.decode(payload), info.as_of, info.feature_set_version, load_id)

    def _load(self, load_id: int) -> tuple[LoadInfo, ProfileCodec]:
        rows = self._readers.fetch(self._sql.load, (load_id,))
        if not rows:
            raise StoreError(f"online_loads has no load {load_id}, yet the profiles view points at it")
        return self._remember(rows[0])

    def _remember(self, row: Sequence[Any]) -> tuple[LoadInfo, ProfileCodec]:
        """LoadInfo and codec of a load row, cached: a load's rows never change once it is current."""
        load_id, as_of, version, members, loaded_at, codec = row
        info = LoadInfo(load_id, _date(as_of), version, members, _utc(loaded_at))
        entry = (info, ProfileCodec.from_json(codec))
        with self._loads_lock:
            while len(self._loads) >= CACHED_LOADS:
                del self._loads[min(self._loads)]
            self._loads[load_id] = entry
        return entry

    # -- publish -----------------------------------------------------------------------------

    def publish(
        self,
        profiles: pd.DataFrame,
        as_of: dt.date,
        feature_set_version: str,
        on_progress: Callable[[int], None] | None = None,
    ) -> LoadInfo:
        """Load ``profiles`` (a ``member_id`` column and feature columns) and make them current at once.

        ``on_progress(n)`` is called after each batch of ``n`` members is written. If anything
        fails, the previous load stays current and the exception propagates.
        """
        _check_load_arguments(as_of, feature_set_version)
        members = _member_ids(profiles)
        features = profiles.drop(columns=MEMBER_ID)
        codec = ProfileCodec.for_frame(features)
        self._drop_stale_loads()
        load_id = self._start_load(as_of, feature_set_version, len(members), codec)
        try:
            batches = _batches(members, features, codec)
            self._write(profiles_table(load_id), batches, on_progress or (lambda n: None))
            info = self._switch_to(load_id)
        except BaseException as exc:
            taken_over = self._abandon(load_id)
            if taken_over and isinstance(exc, Exception) and not isinstance(exc, StoreError):
                raise _abandoned(load_id) from exc
            raise
        self._drop_stale_loads()
        return info

    def _start_load(self, as_of: dt.date, version: str, members: int, codec: ProfileCodec) -> int:
        started = dt.datetime.now(dt.UTC)
        row = {"as_of": as_of, "feature_set_version": version, "members": members, "status": "loading"}
        insert = loads.insert().values(**row, started_at=started, codec=codec.to_json())
        with self._engine.begin() as conn:
            return int(conn.execute(insert.returning(loads.c.load_id)).scalar_one())

    def _write(self, table: str, batches: Iterable[Rows], advance: Callable[[int], None]) -> None:
        if self._dialect == "sqlite":
            _write_sqlite(self._engine, table, batches, advance)
        else:
            _write_postgres(self._engine, table, batches, advance)

    def _switch_to(self, load_id: int) -> LoadInfo:
        """In one transaction: the load becomes current, the previous one retired, the view moved."""
        now = dt.datetime.now(dt.UTC)
        with self._engine.begin() as conn:
            mine = (loads.c.load_id == load_id) & (loads.c.status == "loading")
            if conn.execute(loads.update().where(mine).values(status="current", loaded_at=now)).rowcount != 1:
                raise _abandoned(load_id)
            others = (loads.c.status == "current") & (loads.c.load_id != load_id)
            conn.execute(loads.update().where(others).values(status="retired"))
            for statement in self._sql.point_view:
                conn.exec_driver_sql(statement.format(load_id=load_id, table=profiles_table(load_id)))
            columns = sa.select(loads.c.as_of, loads.c.feature_set_version, loads.c.members)
            as_of, version, members = conn.execute(columns.where(loads.c.load_id == load_id)).one()
        return LoadInfo(load_id, as_of, version, members, now)

    def _abandon(self, load_id: int) -> bool:
        """After a failed publish: mark the load failed and drop its table, if the database still answers.

        True if another publish had already marked it failed (it took over).
        """
        try:
            with self._engine.begin() as conn:
                mine = (loads.c.load_id == load_id) & (loads.c.status == "loading")
                taken_over = conn.execute(loads.update().where(mine).values(status="failed")).rowcount == 0
            _drop_table(self._engine, profiles_table(load_id))
            self._drop_stale_loads()
        except Exception:
            log.warning("could not clean up failed load %s; the next publish will", load_id, exc_info=True)
            return False
        return taken_over

    def _drop_stale_loads(self) -> None:
        """Drop the tables of every load that is not current and mark them dropped."""
        with self._engine.begin() as conn:
            conn.execute(loads.update().where(loads.c.status == "loading").values(status="failed"))
            stale = (loads.c.status != "current") & (loads.c.dropped == sa.false())
            load_ids = conn.execute(sa.select(loads.c.load_id).where(stale)).scalars().all()
        for load_id in load_ids:
            _drop_table(self._engine, profiles_table(load_id))
            with self._engine.begin() as conn:
                conn.execute(loads.update().where(loads.c.load_id == load_id).values(dropped=True))

    def _create_schema(self) -> None:
        """Tables and the empty view, if missing; two processes starting together wait for each other."""
        with self._engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE already serializes them
            if self._dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
            metadata.create_all(conn)
            if VIEW not in sa.inspect(conn).get_view_names():
                conn.exec_driver_sql(self._sql.empty_view)


# -- input checks ------------------------------------------------------------------------------


def _member_ids(profiles: pd.DataFrame) -> np.ndarray:
    """The ``member_id`` column as int64, after checking it is there, integer, complete and unique."""
    if not isinstance(profiles, pd.DataFrame):
        raise DataError(f"profiles must be a pandas DataFrame; got {type(profiles).__name__}")
    if MEMBER_ID not in profiles.columns:
        hint = " (it is the index: call profiles.reset_index())" if MEMBER_ID in profiles.index.names else ""
        raise DataError(
            f"profiles must have a {MEMBER_ID!r} column of unique integers; got columns "
            f"{list(profiles.columns)[:5]!r}{hint}"
        )
    column = profiles[MEMBER_ID]
    if isinstance(column, pd.DataFrame):
        raise DataError(f"profiles must have one {MEMBER_ID!r} column; got {column.shape[1]}")
    if len(column) == 0:
        raise DataError("profiles must hold at least one member; got an empty frame")
    if not pd.api.types.is_integer_dtype(column.dtype) or column.isna().any():
        examples = column[column.isna()].head(3).tolist() or column.head(3).tolist()
        raise DataError(
            f"column {MEMBER_ID!r} must hold integers without missing values; got dtype {column.dtype} "
            f"with {int(column.isna().sum())} missing, for example {examples!r}"
        )
    duplicated = column[column.duplicated()].unique()
    if len(duplicated):
        raise DataError(
            f"column {MEMBER_ID!r} must hold each member once; got {len(duplicated)} members more than once, "
            f"for example {duplicated[:3].tolist()!r}"
        )
    return column.to_numpy(dtype="int64")


def _check_load_arguments(as_of: object, feature_set_version: object) -> None:
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise ConfigError(f"as_of must be a datetime.date; got {as_of!r} ({type(as_of).__name__})")
    if not isinstance(feature_set_version, str) or not feature_set_version.strip():
        raise ConfigError(f"feature_set_version must be a non-empty string; got {feature_set_version!r}")
    if len(feature_set_version) > 200:
        raise ConfigError(
            f"feature_set_version must be at most 200 characters; got {len(feature_set_version)}"
        )


def _abandoned(load_id: int) -> StoreError:
    return StoreError(
        f"load {load_id} was abandoned while it was written, because another publish started; "
        "expected one publisher at a time. The load that was current stays current"
    )


def _checked_url(text: str) -> URL:
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise ConfigError(f"the online store needs a SQLAlchemy URL; got {text!r}") from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigError(
            f"the online store needs a SQLite file, shared by its connections; got the in-memory {text!r}"
        )
    if backend not in ("sqlite", "postgresql") or (backend == "postgresql" and driver != "psycopg"):
        raise ConfigError(
            "the online store URL must start with sqlite:///, postgresql:// or postgresql+psycopg://; "
            f"got {url.render_as_string(hide_password=True)!r}"
        )
    return url


# -- SQLite and PostgreSQL specifics ----------------------------------------------------------


def _configure_sqlite(engine: Engine, read_engine: Engine) -> None:
    """WAL journal; the writer begins IMMEDIATE transactions itself (pysqlite would not)."""

    @sa.event.listens_for(engine, "connect")
    def _writer(dbapi_connection: Any, record: object) -> None:
        dbapi_connection.isolation_level = None
        for pragma in SQLITE_PRAGMAS:
            dbapi_connection.execute(pragma)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @sa.event.listens_for(read_engine, "connect")
    def _reader(dbapi_connection: Any, record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA query_only=ON")


def _write_sqlite(
    engine: Engine, table: str, batches: Iterable[Rows], advance: Callable[[int], None]
) -> None:
    """A rowid table filled in member order, one short transaction per batch."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (member_id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    insert = f"INSERT INTO {table} (member_id, payload) VALUES (?, ?)"
    for rows in batches:
        with engine.begin() as conn:
            conn.connection.driver_connection.executemany(insert, rows)  # type: ignore[union-attr]
        advance(len(rows))


def _write_postgres(
    engine: Engine, table: str, batches: Iterable[Rows], advance: Callable[[int], None]
) -> None:
    """Create, binary COPY and index the table in one transaction: a failure leaves nothing behind."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (member_id BIGINT NOT NULL, payload BYTEA NOT NULL)")
        copy_sql = f"COPY {table} (member_id, payload) FROM STDIN (FORMAT BINARY)"
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
            copy.set_types(["int8", "bytea"])
            for rows in batches:
                for row in rows:
                    copy.write_row(row)
                advance(len(rows))
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD PRIMARY KEY (member_id)")


def _drop_table(engine: Engine, table: str) -> None:
    """On SQLite, empty the table in short transactions first, so other writers never wait long."""
    if engine.dialect.name == "sqlite" and sa.inspect(engine).has_table(table):
        some = f"SELECT member_id FROM {table} LIMIT {BATCH_ROWS * 4}"
        chunk = f"DELETE FROM {table} WHERE member_id IN ({some})"
        while True:
            with engine.begin() as conn:
                if conn.exec_driver_sql(chunk).rowcount == 0:
                    break
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def _batches(members: np.ndarray, features: pd.DataFrame, codec: ProfileCodec) -> Iterator[Rows]:
    """(member_id, payload) rows in member order, BATCH_ROWS at a time."""
    order = np.argsort(members, kind="stable")
    for start in range(0, len(order), BATCH_ROWS):
        take = order[start : start + BATCH_ROWS]
        yield list(zip(members[take].tolist(), codec.encode(features.iloc[take]), strict=True))


def _date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _utc(value: object) -> dt.datetime:
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
