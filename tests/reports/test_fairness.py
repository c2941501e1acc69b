"""Fairness: selection rates by sex, age band and region equal a direct computation from the database."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest
import sqlalchemy as sa

from features.store import OnlineStore
from nba.catalogue import default_catalogue
from reports.fairness import THRESHOLD, age_band, attribute_table, by_design, fairness
from reports.sources import Sources
from serving.audit import AuditLog
from serving.db import open_engine


def direct(sources: Sources) -> pd.DataFrame:
    """Members of answered decisions, their attributes, and 0/1 per action, with pandas alone."""
    with sources.engine.connect() as conn:
        log = pd.read_sql(sa.text("select member_id, record from audit_log"), conn)
    records = [json.loads(r) for r in log["record"]]
    answered = [r for r in records if r.get("status") == 200 and r.get("member_id") is not None]
    members = sorted({r["member_id"] for r in answered})
    assert sources.profiles is not None
    profiles = sources.profiles.get_many(members)
    rows = []
    for member in members:
        values = profiles[member].values
        returned = {a for r in answered if r["member_id"] == member for a in r["returned"]}
        row = {"member_id": member, "sex": "F" if values["sex_female"] else "M",
               "age_band": age_band(values["age"]), "region": values["region"]}  # fmt: skip
        row |= {a.id: int(a.id in returned) for a in sources.catalogue.actions}
        rows.append(row)
    return pd.DataFrame(rows)


def test_fairness_tables_equal_a_direct_computation(sources: Sources) -> None:
    report = fairness(sources)
    expected = direct(sources)
    assert report.members == len(expected) > 0 and report.unknown == 0
    for table in report.tables:
        rates = expected.groupby(table.attribute)[[a.id for a in sources.catalogue.actions]].mean()
        assert table.groups == sorted(rates.index)
        assert table.members == expected[table.attribute].value_counts().to_dict()
        for action in rates.columns:
            for group in table.groups:
                assert table.rates.loc[action, group] == pytest.approx(rates.loc[group, action])
            column = rates[action]
            ratio = column.min() / column.max() if column.max() > 0 else math.nan
            assert table.ratios[action] == pytest.approx(ratio, nan_ok=True)
            assert (action in table.flagged) == (ratio == ratio and ratio < THRESHOLD)


def test_ratio_below_threshold_is_flagged_on_three_rows() -> None:
    frame = pd.DataFrame(
        {"sex": ["F", "F", "M", "M"], "a": [1, 1, 1, 0], "b": [1, 0, 1, 0], "c": [0, 0, 0, 0]}
    )
    table = attribute_table(frame, "sex", ["a", "b", "c"])
    assert table.rates.loc["a"].tolist() == [1.0, 0.5] and table.ratios["a"] == 0.5
    assert table.ratios["b"] == 1.0 and math.isnan(table.ratios["c"])
    assert table.flagged == ["a"] and table.members == {"F": 2, "M": 2}


def test_actions_whose_rule_reads_the_attribute_are_by_design() -> None:
    catalogue = default_catalogue()
    assert by_design(catalogue, "sex") == {
        "breast_screening": "sex_female",
        "cervical_screening": "sex_female",
    }
    assert "eye_exam" in by_design(catalogue, "age_band") and by_design(catalogue, "region") == {}


def test_fairness_on_both_databases(store_url: str) -> None:
    """The same queries on PostgreSQL: three members, one offer returned to a woman."""
    engine = open_engine(store_url)
    store = OnlineStore.from_url(store_url)
    profiles = pd.DataFrame({"member_id": [1, 2, 3], "age": [30, 52, 70], "sex_female": [True, False, True],
                             "region": ["Bretagne", "Bretagne", "Corse"]})  # fmt: skip
    store.publish(profiles, dt.date(2026, 1, 1), "fs-test")
    log = AuditLog(engine)
    for member, returned in ((1, ["prevoyance"]), (2, []), (3, ["flu_vaccination"])):
        log.append({"request_id": f"r{member}", "member_id": member, "status": 200, "returned": returned})
    log.append({"request_id": "failed", "member_id": 3, "status": 503, "returned": []})
    sources = Sources(engine, "unused", store_url, default_catalogue(), profiles=store)
    try:
        report = fairness(sources)
    finally:
        sources.close()
    sex = next(t for t in report.tables if t.attribute == "sex")
    assert report.members == 3 and sex.members == {"F": 2, "M": 1}
    assert sex.rates.loc["prevoyance"].tolist() == [0.5, 0.0] and sex.ratios["prevoyance"] == 0.0
    region = next(t for t in report.tables if t.attribute == "region")
    assert region.rates.loc["flu_vaccination", "Corse"] == 1.0
