"""Online variants: intervals, uplift, the verdict sentence, and numbers equal to the database's."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from reports.online import difference, online, per_member, verdict, wilson
from reports.sources import Sources


def test_wilson_interval_matches_known_values() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert all(v != v for v in wilson(0, 0))


def test_difference_of_proportions_interval() -> None:
    d, low, high = difference(60, 100, 50, 100)
    assert d == pytest.approx(0.1)
    half = 1.959964 * ((0.6 * 0.4 + 0.5 * 0.5) / 100) ** 0.5
    assert (low, high) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)


def fake(members: dict[str, int], accepted: dict[str, int]) -> pd.DataFrame:
    """A per-member table from counts: every accepter accepted one exposure of action ``x``."""
    rows, assigned, member = [], [], 0
    for variant, n in members.items():
        for i in range(n):
            member += 1
            assigned.append((member, variant))
            if i < accepted[variant]:
                rows.append({"request_id": f"r{member}", "member_id": member, "variant": variant,
                             "action_id": "x", "shown": 1, "clicked": 1, "accepted": 1})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["request_id", "member_id", "variant", "action_id", "shown", "clicked",
                                        "accepted"])  # fmt: skip
    return per_member(frame, pd.DataFrame(assigned, columns=["member_id", "variant"]), "control")


@pytest.mark.parametrize(
    ("members", "accepted", "start"),
    [
        ({"control": 1000, "challenger": 1000}, {"control": 100, "challenger": 160}, "The challenger beats"),
        (
            {"control": 1000, "challenger": 1000},
            {"control": 160, "challenger": 100},
            "The challenger does worse",
        ),
        ({"control": 1000, "challenger": 1000}, {"control": 100, "challenger": 105}, "No clear winner yet"),
        ({"control": 40, "challenger": 40}, {"control": 4, "challenger": 20}, "Too early to say"),
        ({"control": 20, "challenger": 20}, {"control": 5, "challenger": 15}, "Too early to say"),
        ({"control": 60, "challenger": 60}, {"control": 10, "challenger": 30}, "The challenger beats"),
    ],
)
def test_verdict_says_who_wins_and_how_sure(
    members: dict[str, int], accepted: dict[str, int], start: str
) -> None:
    sentence = verdict(fake(members, accepted), "control")
    assert sentence.startswith(start), sentence
    if start == "The challenger beats" and members["control"] == 1000:
        assert "+6.0 points (95% CI +3.1 to +8.9" in sentence and "confident" in sentence


def test_without_any_decision_it_is_too_early() -> None:
    assert verdict(pd.DataFrame(), None).startswith("Too early to say")


def test_online_numbers_equal_the_database(sources: Sources) -> None:
    result = online(sources)
    with sources.engine.connect() as conn:
        log = pd.read_sql(sa.text("select record from audit_log"), conn)
        feedback = pd.read_sql(
            sa.text("select distinct request_id, action_id, event from feedback_events"), conn
        )
    records = [r for r in map(json.loads, log["record"]) if r.get("status") == 200]
    exposures = [(r["request_id"], r["variant"], a) for r in records for a in r["returned"]]
    accepted = set(
        feedback.loc[feedback["event"] == "accepted", ["request_id", "action_id"]].itertuples(index=False)
    )
    assert result.exposures == len(exposures) > 0
    overall = result.exposure_table[result.exposure_table["action_id"] == "all"].set_index("variant")
    members = result.member_table[result.member_table["action_id"] == "all"].set_index("variant")
    for variant in {v for _, v, _ in exposures}:
        mine = [(rid, a) for rid, v, a in exposures if v == variant]
        assert overall.loc[variant, "exposures"] == len(mine)
        assert overall.loc[variant, "accepted"] == sum((rid, a) in accepted for rid, a in mine)
        decided = {r["member_id"] for r in records if r["variant"] == variant}
        accepters = {r["member_id"] for r in records if r["variant"] == variant
                     for a in r["returned"] if (r["request_id"], a) in accepted}  # fmt: skip
        assert members.loc[variant, "members"] == len(decided)
        assert members.loc[variant, "accepted"] == len(accepters)
    assert result.reference in ("control", "champion") and result.sentence


def test_online_on_both_databases(store_url: str) -> None:
    """The same queries on PostgreSQL: a control member, two champion members, one acceptance."""
    from nba.catalogue import default_catalogue
    from serving.audit import AuditLog
    from serving.db import open_engine
    from serving.feedback import FeedbackStore

    engine = open_engine(store_url)
    log, feedback = AuditLog(engine), FeedbackStore(engine)
    for member, variant, returned in ((1, "control", ["flu_vaccination"]), (2, "champion", ["prevoyance"]),
                                      (3, "champion", ["prevoyance", "flu_vaccination"])):  # fmt: skip
        log.append({"request_id": f"r{member}", "member_id": member, "status": 200, "variant": variant,
                    "returned": returned})  # fmt: skip
    feedback.append("r3", "prevoyance", "accepted", returned_actions={"prevoyance"}, member_id=3)
    sources = Sources(engine, "unused", store_url, default_catalogue())
    try:
        result = online(sources)
    finally:
        sources.close()
    assert result.reference == "control" and result.exposures == 4 and result.decisions == 3
    members = result.member_table.set_index(["action_id", "variant"])
    assert members.loc[("prevoyance", "champion"), "accepted_share"] == 0.5
    assert members.loc[("prevoyance", "control"), "accepted_share"] == 0.0
    assert members.loc[("prevoyance", "champion"), "accepted_uplift"] == pytest.approx(0.5)
