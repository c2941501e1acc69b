"""Labels follow ACTIONS.md: what the member did in the 90 days after the as-of date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from nba.catalogue import default_catalogue
from training.dataset import plan_split
from training.labels import build_labels

AS_OF = dt.date(2025, 5, 1)
END = AS_OF + dt.timedelta(days=90)


def test_labels_match_the_tables(small_world: Path) -> None:
    members = pd.read_parquet(small_world / "members.parquet").member_id.drop_duplicates()
    labels = build_labels(small_world, default_catalogue(), AS_OF, members)
    claims = pd.read_parquet(small_world / "claims.parquet")
    beneficiaries = pd.read_parquet(small_world / "beneficiaries.parquet")
    subscribers = set(beneficiaries.loc[beneficiaries.role == "subscriber", "beneficiary_id"])
    in_window = (claims.care_date >= AS_OF) & (claims.care_date < END)
    dental = claims[in_window & (claims.care_category == "dental") & claims.beneficiary_id.isin(subscribers)]
    expected = members.isin(dental.member_id).astype("int8").to_numpy()
    assert (labels["dental_checkup"].to_numpy() == expected).all()
    assert 0 < expected.sum() < len(expected)
    holdings = pd.read_parquet(small_world / "holdings.parquet")
    started = holdings[
        (holdings["product"] == "prevoyance") & (holdings.start_date >= AS_OF) & (holdings.start_date < END)
    ]
    took = labels.loc[labels["prevoyance"] == 1].index
    assert set(started.member_id) <= set(took)


def test_the_split_keeps_label_windows_apart() -> None:
    plan = plan_split(dt.date(2025, 12, 31), months=18)
    horizon = dt.timedelta(days=90)
    assert max(plan.train) + horizon <= min(plan.valid)
    assert max(plan.valid) + horizon <= min(plan.test)
    # every label window is known (paid) before the extract date
    assert max(plan.test) + horizon + dt.timedelta(days=30) <= dt.date(2025, 12, 31)
    assert len(plan.valid) == len(plan.test) == 2 and len(plan.train) >= 6
