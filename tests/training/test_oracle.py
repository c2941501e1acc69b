"""The oracle (ground_truth/propensities) is the true probability of exactly what a label counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.synthetic import truth
from nba import vocab
from nba.catalogue import default_catalogue
from training.dataset import PAYMENT_MARGIN_DAYS, extract_date, month_starts
from training.labels import HORIZON_DAYS, build_labels


def day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def test_the_truth_and_the_labels_share_the_horizon() -> None:
    assert truth.HORIZON_DAYS == HORIZON_DAYS


@pytest.mark.parametrize("first", ["2025-01-01", "2025-02-01", "2024-02-01", "2025-10-01", "2025-12-01"])
def test_a_window_covers_exactly_the_horizon(first: str) -> None:
    w = truth.window(day(first))
    lengths = np.diff([*w.starts, w.nexts[-1]])
    assert w.starts[0] == day(first) and w.end == day(first) + HORIZON_DAYS
    assert float(np.dot(lengths, w.cover)) == pytest.approx(HORIZON_DAYS)
    assert w.cover[:-1] == (1.0,) * (len(w.cover) - 1) and 0 < w.cover[-1] <= 1


def test_within_counts_a_first_event_while_still_a_member() -> None:
    h = [np.array([0.1, 0.5]), np.array([0.2, 0.5]), np.array([0.3, 0.5])]
    everyone = [np.ones(2)] * 3
    expected = 1 - 0.9 * 0.8 * 0.7
    assert truth.within(h, everyone, (1.0, 1.0, 1.0))[0] == pytest.approx(expected)
    # leaving after the first month: only the first month's hazard counts
    leaves = [np.ones(2), np.zeros(2), np.zeros(2)]
    assert truth.within(h, leaves, (1.0, 1.0, 1.0)) == pytest.approx([0.1, 0.5])
    # half of the last month inside the window
    assert truth.within(h, everyone, (1.0, 1.0, 0.5))[0] == pytest.approx(1 - 0.9 * 0.8 * 0.85)


def test_an_exposure_raises_the_hazard_by_its_lift() -> None:
    h, q = np.array([0.1]), np.array([0.25])
    assert truth.exposed(h, q, 4.0) == pytest.approx(0.75 * 0.1 + 0.25 * (1 - 0.9**4))


@pytest.fixture(scope="module")
def pooled(small_world: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Oracle and labels of every active member at as-of dates three months apart (windows
    that do not overlap), all of whose label windows are known at the extract date."""
    oracle = duckdb.execute(
        f"select * from read_parquet('{small_world}/ground_truth/propensities.parquet')"
    ).df()
    oracle["month"] = pd.to_datetime(oracle["month"]).dt.date
    latest = extract_date(small_world) - dt.timedelta(days=HORIZON_DAYS + PAYMENT_MARGIN_DAYS)
    truths, labels = [], []
    for as_of in month_starts(latest, 21)[::3]:
        rows = oracle[oracle["month"] == as_of].reset_index(drop=True)
        truths.append(rows)
        labels.append(build_labels(small_world, default_catalogue(), as_of, rows["member_id"]))
    return pd.concat(truths, ignore_index=True), pd.concat(labels, ignore_index=True)


@pytest.mark.parametrize("action", vocab.ACTION_IDS)
def test_the_oracle_mean_is_the_label_rate(pooled: tuple[pd.DataFrame, pd.DataFrame], action: str) -> None:
    oracle, labels = pooled
    p, y = oracle[action].to_numpy(float), labels[action].to_numpy()
    assert y.sum() >= 20, f"too few positives of {action} to check its oracle"
    # a sum of independent Bernoulli(p): within four standard deviations of its mean
    assert abs(y.sum() - p.sum()) <= 4 * np.sqrt((p * (1 - p)).sum()) + 3


def test_the_oracle_ranks_the_labels(pooled: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from sklearn.metrics import roc_auc_score

    oracle, labels = pooled
    aucs = {a: roc_auc_score(labels[a], oracle[a]) for a in vocab.ACTION_IDS}
    assert min(aucs.values()) > 0.6, aucs


def test_the_oracle_does_not_know_what_the_month_will_bring(small_world: Path) -> None:
    """On the first of a month, the oracle cannot know who will move during it: movers' home
    insurance propensity rises only from the next month on."""
    con = duckdb.connect()
    moves = con.execute(
        f"""select distinct member_id, date_trunc('month', event_date)::date as month
            from read_parquet('{small_world}/ground_truth/life_events.parquet') where event = 'move'"""
    ).df()
    oracle = con.execute(
        f"select member_id, month, home_insurance p from "
        f"read_parquet('{small_world}/ground_truth/propensities.parquet')"
    ).df()
    oracle["month"] = pd.to_datetime(oracle["month"])
    moves["month"] = pd.to_datetime(moves["month"])
    during = moves.merge(oracle, on=["member_id", "month"])
    after = moves.assign(month=moves["month"] + pd.DateOffset(months=1)).merge(
        oracle, on=["member_id", "month"]
    )
    assert len(during) > 50
    everyone = oracle["p"].mean()
    assert during["p"].mean() < 2.0 * everyone
    assert after["p"].mean() > 3.0 * during["p"].mean()
