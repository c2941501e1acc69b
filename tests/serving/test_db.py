"""The serving database: URLs, idempotent schema, coexistence with the online store, SQLite locking."""

from __future__ import annotations

import datetime as dt
import gc
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.store import OnlineStore
from nba.errors import ConfigError
from serving.consent import ConsentStore
from serving.db import checked_url, metadata, open_engine, reader_for, writer_turn, writing


def test_postgresql_urls_use_psycopg_3() -> None:
    url = checked_url("postgresql://nba:secret@db:5432/nba")
    assert url.drivername == "postgresql+psycopg" and url.password == "secret"
    assert checked_url("postgresql+psycopg://db/nba").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "must name a SQLite file"),
        ("sqlite:///:memory:", "must name a SQLite file"),
        ("mysql://u:pw@db/nba", "must start with sqlite:///, postgresql://"),
        ("postgresql+psycopg2://db/nba", "must start with sqlite:///, postgresql://"),
        ("not a url", "must be a SQLAlchemy URL"),
    ],
)
def test_unusable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        checked_url(url)
    assert "pw" not in str(raised.value)


def test_schema_is_created_once_and_beside_the_online_store(store_url: str) -> None:
    profiles = OnlineStore.from_url(store_url)
    profiles.publish(pd.DataFrame({"member_id": [1, 2], "age": [40, 50]}), dt.date(2025, 1, 31), "fs-1")
    first, second = open_engine(store_url), open_engine(store_url)
    try:
        tables = set(sa.inspect(first).get_table_names())
        assert set(metadata.tables) <= tables
        assert {"online_loads", "online_profiles_1"} <= tables
        got = profiles.get(1)
        assert got is not None and got.values["age"] == 40
    finally:
        profiles.close()
        first.dispose()
        second.dispose()


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/nba.db")
    done = threading.Event()
    try:
        with writing(engine) as conn:  # holds SQLite's write lock
            conn.exec_driver_sql("SELECT 1")
            reader = threading.Thread(target=lambda: (ConsentStore(engine).events(1), done.set()))
            reader.start()
            assert done.wait(timeout=5), "a read waited for the writer"
            reader.join()
    finally:
        engine.dispose()


def test_settings_give_the_default_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from nba.settings import get_settings

    monkeypatch.setenv("NBA_DATABASE_URL", f"sqlite:///{tmp_path}/from-settings.db")
    get_settings(fresh=True)
    try:
        engine: Engine = open_engine()
        assert str(engine.url).endswith("from-settings.db")
        engine.dispose()
    finally:
        monkeypatch.undo()
        get_settings(fresh=True)


def test_the_reader_shares_connections_and_closes_them_with_its_engine(store_url: str) -> None:
    engine = open_engine(store_url)
    reader = reader_for(engine)
    assert reader_for(engine) is reader
    sql = reader.sql("SELECT count(*) FROM consent_events WHERE member_id = ?")
    threads = [threading.Thread(target=reader.fetch, args=(sql, (i,))) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reader.fetch(sql, (1,)) == [(0,)]
    engine.dispose()
    del engine
    gc.collect()
    with pytest.raises(RuntimeError, match="closed"):
        reader.fetch(sql, (1,))


@pytest.mark.postgres
def test_the_reader_reconnects_once_when_the_server_dropped_an_idle_connection(
    postgres_schema_url: str,
) -> None:
    engine = open_engine(postgres_schema_url)
    try:
        reader = reader_for(engine)
        sql = reader.sql("SELECT pg_backend_pid() + 0 * ?")
        pid = reader.fetch(sql, (1,))[0][0]
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        assert reader.fetch(sql, (1,))[0][0] != pid
    finally:
        engine.dispose()


def test_sqlite_writers_take_turns_and_a_nested_write_does_not_wait(tmp_path: Path) -> None:
    """A writer waits for the turn held elsewhere and gets it as soon as it is released; a turn
    asked for inside the same thread's write does not wait for itself."""
    engine = open_engine(f"sqlite:///{tmp_path / 'nba.db'}")
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with writer_turn(engine):
            order.append("holder in")
            holding.set()
            release.wait(5)
            order.append("holder out")

    def writer() -> None:
        with writing(engine) as conn:
            order.append("writer in")
            with writer_turn(engine):  # same thread: no second turn to wait for
                order.append("nested turn")
            conn.exec_driver_sql("SELECT 1")

    first = threading.Thread(target=holder)
    first.start()
    assert holding.wait(5)
    second = threading.Thread(target=writer)
    second.start()
    second.join(0.3)
    assert second.is_alive() and order == ["holder in"]  # waiting for the turn
    release.set()
    first.join(5)
    second.join(5)
    assert not second.is_alive()
    assert order == ["holder in", "holder out", "writer in", "nested turn"]
    assert (tmp_path / "nba.db-writer.lock").exists()
    engine.dispose()


def test_without_autocheckpoint_the_checkpointer_copies_the_wal_into_the_file(tmp_path: Path) -> None:
    """Commits leave their pages in the WAL; the checkpointer's thread copies them into the file."""
    import os
    import time

    from serving.audit import AuditLog
    from serving.db import Checkpointer

    path = tmp_path / "nba.db"
    engine = open_engine(f"sqlite:///{path}", autocheckpoint=False)
    log = AuditLog(engine)
    empty = os.path.getsize(path)
    for i in range(300):  # ~6 MB, past the 1,000 pages at which a commit would copy them itself
        log.append({"request_id": f"r{i}", "member_id": i, "blob": "x" * 20_000})
    assert os.path.getsize(path) == empty  # everything still in the WAL
    assert os.path.getsize(f"{path}-wal") > 5_000_000
    checkpointer = Checkpointer.for_engine(engine, interval=0.05)
    assert checkpointer is not None
    deadline = time.monotonic() + 10
    while checkpointer.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    checkpointer.stop()
    assert os.path.getsize(path) > 5_000_000
    assert log.verify().checked == 300
    engine.dispose()
