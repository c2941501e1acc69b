"""`nba simulate`: app traffic against a real `nba serve`, members responding by the ground truth."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from nba import vocab
from nba.errors import ConfigError, DataError
from nba.simulate import (
    CLICKS_PER_ACCEPTANCE,
    day_members,
    load_traffic,
    response,
    simulate,
)
from tests.conftest import Served


def test_responses_follow_the_truth_as_a_campaign_exposure() -> None:
    rng = np.random.default_rng(0)
    draws = rng.random((40_000, 2))
    for action, lift, p in (("prevoyance", 4.0, 0.3), ("dental_checkup", 2.5, 0.5)):
        events = [response(p, action, d) for d in draws]
        accepted = np.mean(["accepted" in e for e in events])
        clicked = np.mean(["clicked" in e for e in events])
        # docs/synthetic-world.md: an exposure raises the monthly hazard h to 1 - (1 - h) ** lift
        expected = 1 - (1 - p) ** (lift / 3)
        assert accepted == pytest.approx(expected, abs=0.01)
        assert clicked == pytest.approx(min(1.0, CLICKS_PER_ACCEPTANCE * expected), abs=0.01)
        assert all("clicked" in e for e in events if "accepted" in e)
        assert not any("dismissed" in e and "clicked" in e for e in events)
    assert response(0.0, "prevoyance", np.array([0.0, 0.5])) == ()
    assert response(1.0, "prevoyance", np.array([0.999, 0.5])) == ("clicked", "accepted")


def test_traffic_is_the_app_users_with_their_truth(small_world: Path) -> None:
    traffic = load_traffic(small_world)
    members = pd.read_parquet(small_world / "members.parquet")
    current = members[members["valid_to"].isna() & members["membership_end"].isna()]
    online = set(current.loc[current["online_account_since"].notna(), "member_id"])
    assert set(traffic.members) <= online and len(traffic.members) > 0.8 * len(online)
    truth = pd.read_parquet(small_world / "ground_truth" / "propensities.parquet")
    latest = truth[truth["month"] == truth["month"].max()].set_index("member_id")
    member = int(traffic.members[len(traffic.members) // 2])
    for action in vocab.ACTION_IDS:
        assert traffic.probability(member, action) == pytest.approx(float(latest.loc[member, action]))


def test_each_day_draws_distinct_members_the_same_way_for_a_seed(small_world: Path) -> None:
    traffic = load_traffic(small_world)
    day0 = day_members(traffic, 5, 0, 50)
    assert len(set(day0)) == 50 and set(day0) <= set(traffic.members)
    assert np.array_equal(day0, day_members(traffic, 5, 0, 50))
    assert not np.array_equal(day0, day_members(traffic, 5, 1, 50))
    assert not np.array_equal(day0, day_members(traffic, 6, 0, 50))


def test_bad_options_are_refused_before_any_call(small_world: Path, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"  # nothing listens: a call would fail differently
    with pytest.raises(ConfigError, match="--days must be at least 1; got 0"):
        simulate(url, "k", small_world, 0, 10)
    with pytest.raises(ConfigError, match="--requests-per-day must be at least 1; got -2"):
        simulate(url, "k", small_world, 1, -2)
    with pytest.raises(
        ConfigError, match=r"--requests-per-day must be at most [\d,]+, the members .* got 99,999"
    ):
        simulate(url, "k", small_world, 1, 99_999)
    with pytest.raises(ConfigError, match="--key: expected an API key"):
        simulate(url, "", small_world, 1, 10)
    with pytest.raises(DataError, match="expected the generator's ground truth"):
        simulate(url, "k", tmp_path, 1, 10)


def test_an_unreachable_service_is_named(small_world: Path) -> None:
    from nba.cli import app

    run = CliRunner().invoke(
        app, ["simulate", "--days", "1", "--requests-per-day", "3", "--data", str(small_world),
              "--url", "http://127.0.0.1:9", "--key", "k"],
    )  # fmt: skip
    assert run.exit_code == 2 and "cannot reach the service at http://127.0.0.1:9/recommend" in run.output


def feedback_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event, count(*) FROM feedback_events GROUP BY event")).all()
    engine.dispose()
    return {str(event): int(n) for event, n in rows}


@pytest.fixture(scope="module")
def two_services(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, str]]]:
    """Two services on two copies of the published database (as earlier tests left it, feedback
    included), with a large control group and challenger share."""
    from nba.demo import free_port, running_service

    with ExitStack() as stack:
        out = []
        for i in range(2):
            home = tmp_path_factory.mktemp(f"simulate{i}")
            # the backup API: the live database with what its WAL holds (the service checkpoints
            # only every second, so a copy of the file alone misses the latest commits)
            live = served.database_url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(live)) as source, closing(sqlite3.connect(home / "nba.db")) as copy:
                source.backup(copy)
            url = f"sqlite:///{home / 'nba.db'}"
            env = served.env | {"NBA_DATABASE_URL": url, "BENTOML_HOME": str(home / "bentoml")}
            service = stack.enter_context(running_service(free_port(), home / "serve.log", env=env))
            # the split as an admin sets it: the copied database may hold one an earlier test set
            split = {"challenger_share": 0.3, "control_share": 0.3}
            admin = {"Authorization": f"Bearer {served.keys['admin']}"}
            answer = httpx.post(f"{service}/experiment", json=split, headers=admin, timeout=30)
            assert answer.status_code == 201, answer.text
            out.append((service, url))
        yield out


@pytest.mark.e2e
def test_simulation_is_deterministic_and_the_database_holds_what_it_reports(
    two_services: list[tuple[str, str]], served: Served
) -> None:
    before = feedback_counts(two_services[0][1])
    results = [
        simulate(
            service, served.keys["app"], served.world, days=3, requests_per_day=40, seed=11, concurrency=c
        )
        for (service, _), c in zip(two_services, (1, 8), strict=True)
    ]
    assert results[0].as_dict() == results[1].as_dict()  # concurrency 1 and 8 alike
    result = results[0]
    assert {"champion", "challenger", "control"} <= set(result.by_variant)
    assert sum(c["requests"] for c in result.by_variant.values()) + sum(result.unanswered.values()) == 120
    assert sum(c["accepted"] for c in result.by_variant.values()) > 0
    assert not [a for (v, a) in result.by_action if v == "control" and a in vocab.OFFER_ACTIONS]
    for counts in result.by_action.values():
        assert counts["accepted"] <= counts["clicked"] <= counts["shown"]
    after = feedback_counts(two_services[0][1])
    for event in vocab.FEEDBACK_EVENTS:
        posted = sum(c[event] for c in result.by_variant.values())
        assert after.get(event, 0) - before.get(event, 0) == posted, event
