"""The online profile store, on a SQLite file and on PostgreSQL (marker ``postgres``)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import features.store
from features.store import LoadInfo, OnlineStore, StoredProfile, profiles_table
from nba.errors import ConfigError, DataError, StoreError
from nba.settings import get_settings

JAN = dt.date(2024, 1, 31)
FEB = dt.date(2024, 2, 29)


@pytest.fixture
def store(store_url: str) -> Iterator[OnlineStore]:
    with OnlineStore.from_url(store_url) as opened:
        yield opened


def profiles(members: list[int], tag: int = 1) -> pd.DataFrame:
    """A small profile frame; ``tag`` marks which publish a value comes from."""
    return pd.DataFrame(
        {
            "member_id": members,
            "tag": [tag] * len(members),
            "claims_12m": [float(m) * 10.5 for m in members],
            "region": [f"region-{m}" for m in members],
        }
    )


def every_type() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": [11, 12, 13],
            "age": np.array([34, 71, 8], dtype="int64"),
            "children": pd.array([2, None, 0], dtype="Int64"),
            "spend": [120.25, np.nan, 0.1 + 0.2],
            "share": pd.array([0.5, None, 1.0], dtype="Float64"),
            "small": np.array([1.5, 2.25, -0.0], dtype="float32"),
            "smoker": [True, False, True],
            "vaccinated": pd.array([None, True, False], dtype="boolean"),
            "region": ["Bretagne", None, "Île-de-France"],
            "last_visit": [dt.date(2023, 12, 1), None, dt.date(2024, 1, 15)],
            "renewal": pd.Series(["2024-03-01", None, "2024-06-30"], dtype="datetime64[us]"),
            "mixed": [1, "deux", None],
        }
    )


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_values_round_trip_with_their_types(store: OnlineStore) -> None:
    info = store.publish(every_type(), JAN, "fs-1")
    first, second = store.get(11), store.get(12)
    assert first is not None
    assert second is not None
    assert first == StoredProfile(
        member_id=11,
        values={
            "age": 34,
            "children": 2,
            "spend": 120.25,
            "share": 0.5,
            "small": 1.5,
            "smoker": True,
            "vaccinated": None,
            "region": "Bretagne",
            "last_visit": "2023-12-01",
            "renewal": "2024-03-01",
            "mixed": 1,
        },
        as_of=JAN,
        feature_set_version="fs-1",
        load_id=info.load_id,
    )
    kinds = {name: type(first.values[name]) for name in ("age", "children", "spend", "smoker")}
    assert kinds == {"age": int, "children": int, "spend": float, "smoker": bool}
    missing = {name for name, value in second.values.items() if value is None}
    assert missing == {"children", "spend", "share", "region", "last_visit", "renewal"}
    assert second.values["mixed"] == "deux"
    third = store.get(13)
    assert third is not None
    assert (third.values["spend"], third.values["small"], third.values["mixed"]) == (0.1 + 0.2, -0.0, None)


def test_extreme_values_round_trip(store: OnlineStore) -> None:
    big = np.iinfo(np.int64)
    frame = pd.DataFrame(
        {
            "member_id": [big.max, big.min],
            "count": [big.max, big.min],
            "ratio": [np.inf, 5e-324],
            "note": ['dit "bonjour"\n', "😀"],
        }
    )
    store.publish(frame, JAN, "fs-1")
    found = store.get_many([int(big.max), int(big.min)])
    assert found[big.max].values == {"count": big.max, "ratio": np.inf, "note": 'dit "bonjour"\n'}
    assert found[big.min].values == {"count": big.min, "ratio": 5e-324, "note": "😀"}


def test_unknown_member_and_empty_store_give_none(store: OnlineStore) -> None:
    assert store.current() is None
    assert store.get(1) is None
    store.publish(profiles([1, 2, 3]), JAN, "fs-1")
    assert store.get(4) is None
    assert store.get(np.int64(2)) is not None  # type: ignore[arg-type]


def test_current_describes_the_last_publish(store: OnlineStore) -> None:
    info = store.publish(profiles([5, 3, 4]), JAN, "fs-1")
    assert info.members == 3
    assert info.loaded_at.tzinfo is not None
    assert store.current() == info


def test_second_publish_replaces_the_first(store: OnlineStore, store_url: str) -> None:
    old = store.publish(profiles([1, 2, 3], tag=1), JAN, "fs-1")
    new = store.publish(profiles([2, 3, 4], tag=2), FEB, "fs-2")
    assert new.load_id > old.load_id
    assert store.current() == new
    assert store.get(1) is None
    profile = store.get(4)
    assert profile is not None
    assert (profile.values["tag"], profile.as_of, profile.feature_set_version) == (2, FEB, "fs-2")
    assert profiles_table(old.load_id) not in tables(store_url)


def test_get_many_returns_known_members_from_one_load(store: OnlineStore) -> None:
    info = store.publish(profiles([1, 2, 3]), JAN, "fs-1")
    found = store.get_many([3, 1, 99, 1, np.int64(2)])  # type: ignore[list-item]
    assert sorted(found) == [1, 2, 3]
    assert {p.load_id for p in found.values()} == {info.load_id}
    assert found[3].values["region"] == "region-3"
    assert store.get_many([]) == {}
    assert store.get_many([99]) == {}


def test_reopening_the_store_sees_the_current_load(store: OnlineStore, store_url: str) -> None:
    info = store.publish(profiles([1, 2]), JAN, "fs-1")
    with OnlineStore.from_url(store_url) as again:
        assert again.current() == info
        assert again.get(2) == store.get(2)


def test_readers_never_see_a_mix_of_two_loads(store: OnlineStore, monkeypatch: pytest.MonkeyPatch) -> None:
    old = store.publish(profiles([1, 2, 3], tag=1), JAN, "fs-1")
    seen: list[tuple[tuple[int, ...], set[tuple[int, object, dt.date]]]] = []
    stop = threading.Event()

    def read_repeatedly() -> None:
        while not stop.is_set():
            found = store.get_many([1, 2, 3, 4])
            loads = {(p.load_id, p.values["tag"], p.as_of) for p in found.values()}
            seen.append((tuple(sorted(found)), loads))

    during: list[StoredProfile | None] = []

    def slowly(n: int) -> None:
        during.append(store.get(1))
        time.sleep(0.02)

    monkeypatch.setattr(features.store, "BATCH_ROWS", 1)
    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        time.sleep(0.05)
        new = store.publish(profiles([2, 3, 4], tag=2), FEB, "fs-2", on_progress=slowly)
        time.sleep(0.05)
    finally:
        stop.set()
        reader.join()
    assert len(during) == 3
    assert all(p is not None and p.load_id == old.load_id for p in during)
    wholes = {
        ((1, 2, 3), frozenset({(old.load_id, 1, JAN)})),
        ((2, 3, 4), frozenset({(new.load_id, 2, FEB)})),
    }
    assert {(members, frozenset(loads)) for members, loads in seen} == wholes


def test_failed_publish_keeps_the_previous_load(store: OnlineStore, store_url: str) -> None:
    old = store.publish(profiles([1, 2, 3], tag=1), JAN, "fs-1")

    def fail(n: int) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.publish(profiles([7, 8, 9], tag=2), FEB, "fs-2", on_progress=fail)
    assert store.current() == old
    assert store.get(7) is None
    assert store.get(1).values["tag"] == 1  # type: ignore[union-attr]
    assert tables(store_url) == {"online_loads", profiles_table(old.load_id)}


def test_next_publish_drops_what_a_crashed_publish_left(
    store: OnlineStore, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.publish(profiles([1, 2, 3], tag=1), JAN, "fs-1")
    monkeypatch.setattr(OnlineStore, "_abandon", lambda self, load_id: False)  # as if the process died
    monkeypatch.setattr(features.store, "BATCH_ROWS", 1)

    def crash(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.publish(profiles([7, 8, 9], tag=2), FEB, "fs-2", on_progress=crash)
    monkeypatch.undo()
    assert store.current().as_of == JAN  # type: ignore[union-attr]
    new = store.publish(profiles([4, 5], tag=3), FEB, "fs-2")
    assert tables(store_url) == {"online_loads", profiles_table(new.load_id)}
    assert store.get(4).values["tag"] == 3  # type: ignore[union-attr]


def test_a_publish_started_meanwhile_wins(store: OnlineStore, store_url: str) -> None:
    store.publish(profiles([1, 2, 3], tag=1), JAN, "fs-1")
    other = OnlineStore.from_url(store_url)
    winner: list[LoadInfo] = []

    def publish_elsewhere(n: int) -> None:
        if not winner:
            winner.append(other.publish(profiles([5, 6], tag=3), FEB, "fs-3"))

    with pytest.raises(StoreError, match=r"abandoned .* another publish started"):
        store.publish(profiles([7, 8, 9], tag=2), FEB, "fs-2", on_progress=publish_elsewhere)
    other.close()
    assert store.current() == winner[0]
    assert store.get(5).values["tag"] == 3  # type: ignore[union-attr]
    assert tables(store_url) == {"online_loads", profiles_table(winner[0].load_id)}


def test_threads_read_at_once(store: OnlineStore) -> None:
    store.publish(profiles(list(range(1, 201))), JAN, "fs-1")
    wrong: list[int] = []

    def read(offset: int) -> None:
        for member in range(1, 201):
            profile = store.get((member + offset) % 200 + 1)
            if profile is None or profile.values["region"] != f"region-{profile.member_id}":
                wrong.append(member)

    threads = [threading.Thread(target=read, args=(k * 37,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def _duplicate_members(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(member_id=[1, 2, 1])


BAD_FRAMES = [
    (lambda f: f.drop(columns="member_id"), r"'member_id' column of unique integers; got columns \['tag'"),
    (lambda f: f.set_index("member_id"), r"it is the index"),
    (_duplicate_members, r"each member once; got 1 members more than once, for example \[1\]"),
    (lambda f: f.assign(member_id=[1.0, 2.5, 3.0]), r"integers without missing values; got dtype float64"),
    (lambda f: f.assign(member_id=pd.array([1, None, 3], dtype="Int64")), r"got dtype Int64 with 1 missing"),
    (lambda f: f.iloc[:0], r"at least one member; got an empty frame"),
    (lambda f: f.assign(visits=[[1], [2], None]), r"column 'visits' holds a list value \(\[1\]\)"),
    (lambda f: f.assign(visits=[{1}, {2}, {3}]), r"column 'visits' holds .* expected int, float, bool, str"),
    (
        lambda f: f.rename(columns={"tag": 7}),
        r"named by non-empty strings; got 1 other names, for example \[7\]",
    ),
    (lambda f: f.set_axis(["member_id", "a", "a", "b"], axis=1), r"unique; got \['a'\] more than once"),
]


@pytest.mark.parametrize(("spoil", "message"), BAD_FRAMES)
def test_bad_profiles_are_refused_and_change_nothing(
    store: OnlineStore, spoil: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    old = store.publish(profiles([1, 2, 3]), JAN, "fs-1")
    with pytest.raises(DataError, match=message):
        store.publish(spoil(profiles([1, 2, 3], tag=2)), FEB, "fs-2")
    assert store.current() == old


@pytest.mark.parametrize(
    ("as_of", "version", "message"),
    [
        ("2024-01-31", "fs-1", r"as_of must be a datetime.date; got '2024-01-31' \(str\)"),
        (dt.datetime(2024, 1, 31, 8), "fs-1", r"as_of must be a datetime.date; got datetime"),
        (JAN, " ", r"feature_set_version must be a non-empty string; got ' '"),
    ],
)
def test_bad_load_arguments_are_refused(
    store: OnlineStore, as_of: object, version: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        store.publish(profiles([1]), as_of, version)  # type: ignore[arg-type]


def test_closed_store_refuses_reads(store_url: str) -> None:
    store = OnlineStore.from_url(store_url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(1)


def test_default_url_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "not" / "yet" / "nba.db"
    monkeypatch.setenv("NBA_DATABASE_URL", f"sqlite:///{path}")
    get_settings(fresh=True)
    try:
        with OnlineStore.from_url() as store:
            store.publish(profiles([1]), JAN, "fs-1")
    finally:
        monkeypatch.undo()
        get_settings(fresh=True)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "needs a SQLite file"),
        ("sqlite:///:memory:", "needs a SQLite file"),
        (
            "mysql://root@localhost/nba",
            r"must start with sqlite:///, postgresql://.*got 'mysql://root@localhost/nba'",
        ),
        ("postgresql+asyncpg://u:secret@h/db", r"got 'postgresql\+asyncpg://u:\*\*\*@h/db'"),
        ("not a url", "needs a SQLAlchemy URL; got 'not a url'"),
    ],
)
def test_unusable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OnlineStore.from_url(url)
