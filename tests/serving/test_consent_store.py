"""The consent registry on SQLite and PostgreSQL: appends, reads, and the import of a world's history."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.tables import CONSENT_EVENTS, arrow_schema
from nba import vocab
from nba.errors import DataError, InvalidField
from serving.consent import ConsentEvent, ConsentStore, check
from serving.db import open_engine

NOW = dt.datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
VALID: dict[str, Any] = {
    "member_id": 7,
    "purpose": "prevention",
    "channel": "all",
    "decision": "granted",
    "notice_version": "2025-09",
    "source": "app",
    "actor": "member",
}


def test_append_sets_capture_time_and_reads_back(engine: Engine) -> None:
    store = ConsentStore(engine)
    event = store.append(**VALID, now=NOW)
    assert event.captured_at == event.effective_from == NOW
    assert event.expires_at is None and event.event_id >= 1
    assert store.events(7) == [event]
    assert store.events(8) == []


def test_append_keeps_future_effect_and_expiry(engine: Engine) -> None:
    start, end = NOW + dt.timedelta(days=2), NOW + dt.timedelta(days=365)
    paris = dt.timezone(dt.timedelta(hours=2))
    event = ConsentStore(engine).append(
        **VALID, effective_from=start.astimezone(paris), expires_at=end, now=NOW
    )
    assert (event.effective_from, event.expires_at) == (start, end)
    assert event.effective_from.tzinfo == dt.UTC
    assert ConsentStore(engine).events(7) == [event]


def test_events_come_in_capture_order_for_one_member(engine: Engine) -> None:
    store = ConsentStore(engine)
    later = store.append(**VALID | {"decision": "withdrawn"}, now=NOW + dt.timedelta(hours=1))
    earlier = store.append(**VALID, now=NOW)
    store.append(**VALID | {"member_id": 8}, now=NOW)
    assert store.events(7) == [earlier, later]
    assert not check(store.events(7), "prevention", "app", NOW + dt.timedelta(days=1), adult=True,
                     vulnerable=False).allowed  # fmt: skip


def test_back_dated_consent_is_refused(engine: Engine) -> None:
    store = ConsentStore(engine)
    with pytest.raises(InvalidField) as raised:
        store.append(**VALID, effective_from=NOW - dt.timedelta(seconds=1), now=NOW)
    assert raised.value.field == "effective_from"
    assert "back-dating" in str(raised.value) and NOW.isoformat() in str(raised.value)
    assert store.events(7) == []


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("purpose", "marketing", vocab.PURPOSES),
        ("channel", "fax", vocab.CHANNELS),
        ("decision", "maybe", vocab.CONSENT_DECISIONS),
        ("notice_version", "1999-01", vocab.NOTICE_VERSIONS),
        ("source", "phone", vocab.CONSENT_SOURCES),
    ],
)
def test_unknown_vocabulary_is_named(
    engine: Engine, field: str, value: str, allowed: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidField) as raised:
        ConsentStore(engine).append(**VALID | {field: value}, now=NOW)
    error = raised.value
    assert (error.field, error.expected, error.received) == (field, allowed, value)
    assert str(error) == f"{field} must be one of {list(allowed)}; got {value!r}"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"member_id": 0}, "member_id"),
        ({"member_id": "7"}, "member_id"),
        ({"actor": " "}, "actor"),
        ({"expires_at": NOW}, "expires_at"),
        ({"effective_from": NOW.replace(tzinfo=None)}, "effective_from"),
    ],
)
def test_other_bad_fields_are_named(engine: Engine, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        ConsentStore(engine).append(**VALID | changes, now=NOW)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field} must be")


def test_import_is_idempotent(engine: Engine, small_world: Path) -> None:
    source = pq.read_table(small_world / "consent_events.parquet")
    store = ConsentStore(engine)
    assert store.import_world(small_world) == source.num_rows
    assert store.import_world(small_world) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM consent_events")).scalar_one() == source.num_rows
    member = source["member_id"][0].as_py()
    rows = source.filter(pa.compute.equal(source["member_id"], member)).to_pylist()
    expected = sorted((ConsentEvent(**row) for row in rows), key=lambda e: (e.captured_at, e.event_id))
    assert store.events(member) == expected


def test_appends_after_an_import_get_new_ids(engine: Engine, small_world: Path) -> None:
    store = ConsentStore(engine)
    store.import_world(small_world)
    top = pq.read_table(small_world / "consent_events.parquet", columns=["event_id"])["event_id"]
    assert store.append(**VALID, now=NOW).event_id > pa.compute.max(top).as_py()


def tiny_world(root: Path, rows: list[dict[str, Any]]) -> Path:
    root.mkdir()
    pq.write_table(
        pa.Table.from_pylist(rows, schema=arrow_schema(CONSENT_EVENTS)), root / "consent_events.parquet"
    )
    return root


def row(event_id: int, **changes: Any) -> dict[str, Any]:
    base = VALID | {"event_id": event_id, "captured_at": NOW, "effective_from": NOW, "expires_at": None}
    return base | changes


def test_import_refuses_an_id_that_holds_another_event(engine: Engine, tmp_path: Path) -> None:
    store = ConsentStore(engine)
    store.import_world(tiny_world(tmp_path / "a", [row(1), row(2)]))
    changed = tiny_world(tmp_path / "b", [row(2, decision="withdrawn"), row(3)])
    with pytest.raises(DataError, match=r"1 event ids .* for example \[2\]"):
        store.import_world(changed)
    assert [e.event_id for e in store.events(7)] == [1, 2]
    assert store.events(7)[1].decision == "granted"


def test_import_refuses_an_id_given_twice(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="each event_id once"):
        ConsentStore(engine).import_world(tiny_world(tmp_path / "w", [row(1), row(1, member_id=8)]))
    assert ConsentStore(engine).events(7) == []


def test_import_names_a_value_outside_the_vocabulary(engine: Engine, tmp_path: Path) -> None:
    world = tiny_world(tmp_path / "w", [row(1), row(2, channel="fax")])
    with pytest.raises(DataError, match=r"column 'channel': expected one of .* for example \['fax'\]"):
        ConsentStore(engine).import_world(world)


def test_import_names_a_missing_table(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"consent_events\.parquet or a folder"):
        ConsentStore(engine).import_world(tmp_path)


def test_import_reads_a_folder_of_parts(engine: Engine, tmp_path: Path) -> None:
    world = tiny_world(tmp_path / "w", [row(1), row(2)])
    (world / "consent_events").mkdir()
    shutil.move(world / "consent_events.parquet", world / "consent_events" / "part-0.parquet")
    assert ConsentStore(engine).import_world(world) == 2


def test_consent_events_are_append_only(engine: Engine) -> None:
    ConsentStore(engine).append(**VALID, now=NOW)
    for statement in ("UPDATE consent_events SET decision = 'granted'", "DELETE FROM consent_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert len(ConsentStore(engine).events(7)) == 1


@pytest.mark.postgres
def test_import_keeps_instants_whatever_the_session_time_zone(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    url = sa.make_url(postgres_schema_url)
    options = f"{url.query['options']} -ctimezone=Pacific/Auckland"
    engine = open_engine(url.update_query_dict({"options": options}).render_as_string(hide_password=False))
    try:
        store = ConsentStore(engine)
        store.import_world(tiny_world(tmp_path / "w", [row(1, expires_at=NOW + dt.timedelta(days=9))]))
        event = store.events(7)[0]
        assert (event.captured_at, event.expires_at) == (NOW, NOW + dt.timedelta(days=9))
        assert store.import_world(tmp_path / "w") == 0
    finally:
        engine.dispose()
