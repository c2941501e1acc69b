"""Labels follow ACTIONS.md: what the member did in the 90 days after the as-of date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
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
    # every training window closes before the first test date
    assert max(plan.train) + horizon <= min(plan.test)
    # every label window is known (paid) before the extract date
    assert max(plan.test) + horizon + dt.timedelta(days=30) <= dt.date(2025, 12, 31)
    assert set(plan.valid) <= set(plan.train) and max(plan.valid) == max(plan.train)
    assert len(plan.test) == 2 and len(plan.valid) == 6 and len(plan.train) >= 12


def test_validation_members_are_seen_by_one_side_only() -> None:
    plan = plan_split(dt.date(2025, 12, 31), months=18)
    members = np.arange(1, 20_001)
    horizon = dt.timedelta(days=90)
    splits = {day: plan.split_of(day, members) for day in plan.dates}
    held = splits[plan.valid[0]] == "valid"
    assert 0.18 < held.mean() < 0.22
    for day, split in splits.items():
        if day in plan.test:
            assert (split == "test").all()
        elif day in plan.valid:
            assert ((split == "valid") == held).all()
        else:
            # a held-out member trains only on windows closed before its first validation date
            trains = split[held] == "train"
            assert trains.all() if day + horizon <= plan.valid[0] else not trains.any()
            assert (split[~held] == "train").all()
    # the same members on every run and every date
    assert (plan.split_of(plan.valid[-1], members) == splits[plan.valid[-1]]).all()


def test_as_of_dates_never_reach_back_to_where_the_claims_start(small_world: Path) -> None:
    import pytest

    from nba.errors import ConfigError
    from training.dataset import MIN_HISTORY_MONTHS, plan_for

    first_care = pd.read_parquet(small_world / "claims.parquet", columns=["care_date"]).care_date.min()
    with pytest.raises(ConfigError) as caught:
        plan_for(small_world, months=36)  # the default, on a world of 24 months
    message = str(caught.value)
    assert "--months" in message and "got 36" in message and first_care.isoformat() in message
    allowed = int(message.split("at most ")[1].split()[0])
    plan = plan_for(small_world, months=allowed)  # what the message offers is accepted
    months_in = (plan.train[0].year - first_care.year) * 12 + plan.train[0].month - first_care.month
    assert MIN_HISTORY_MONTHS <= months_in <= MIN_HISTORY_MONTHS + 1
    with pytest.raises(ConfigError):
        plan_for(small_world, months=allowed + 1)
