"""nba evaluate: ranking metrics computed by hand, and the whole evaluation on a small world."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.evaluate import SCORERS, ranking_metrics
from training.metrics import binary_metrics, gain_share_interval, lift_at, tie_groups, weighted_auc


def test_map_and_ndcg_at_3_by_hand() -> None:
    ids = ("a", "b", "c", "d")
    test = pd.DataFrame(
        {"label_a": [1, 0, 0], "label_b": [0, 0, 0], "label_c": [1, 0, 1], "label_d": [0, 0, 0]}
    )
    scores = {
        "a": np.array([0.9, 0.5, 0.1]),
        "b": np.array([0.8, 0.4, 0.9]),
        "c": np.array([0.1, 0.3, np.nan]),  # member 3 is not eligible for c: its positive cannot count
        "d": np.array([0.7, 0.2, 0.8]),
    }
    map3, ndcg3, members = ranking_metrics(test, scores, ids)
    # member 1 ranks a (hit), b, d: AP = (1/1) / min(2, 3) = 0.5; member 2 has no positive;
    # member 3's only positive is not eligible, so it has none either
    assert members == 1
    assert map3 == pytest.approx(0.5)
    assert ndcg3 == pytest.approx(1.0 / (1.0 + 1.0 / math.log2(3)))


def test_lift_and_metrics_on_a_known_ranking() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    score = np.linspace(1, 0, 10)
    assert lift_at(y, score, 0.2) == pytest.approx(5.0)  # both positives in the top 20%
    metrics = binary_metrics(y, score)
    assert metrics["roc_auc"] == pytest.approx(1.0)
    assert np.isnan(binary_metrics(y, score + 1)["brier"])  # not probabilities: no Brier score


def test_evaluate_compares_every_scorer(trained, small_world: Path, mlflow_home) -> None:  # type: ignore[no-untyped-def]
    from training.evaluate import evaluate

    result = evaluate(small_world, mlflow_home[0], experiment="test", months=10)
    assert set(result.per_action["scorer"]) == set(SCORERS)
    assert len(result.per_action) == 16 * len(SCORERS)
    assert result.ranking["map_3"].between(0, 1).all()
    oracle = result.per_action[result.per_action["scorer"] == "oracle"]
    assert oracle["roc_auc"].dropna().gt(0.5).mean() > 0.8  # the truth ranks better than chance
    shares = result.shares.set_index("action")
    assert len(shares) == 16
    wide = result.per_action.pivot(index="action", columns="scorer", values="roc_auc")
    expected = (wide["model"] - 0.5) / (wide["oracle"] - 0.5)
    finite = shares["low"].notna()
    assert finite.sum() >= 12  # every action with positives on both test dates gets an interval
    assert np.allclose(shares.loc[finite, "share"], expected[shares.index[finite]])
    assert (shares.loc[finite, "low"] <= shares.loc[finite, "high"]).all()


def test_metrics_are_computed_within_each_as_of_date() -> None:
    from training.evaluate import metrics_by_date

    y = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.2, 0.1])  # a perfect ranking on each date, not across them
    dates = np.array(["2025-08-01", "2025-08-01", "2025-09-01", "2025-09-01"])
    assert binary_metrics(y, score)["roc_auc"] == pytest.approx(0.75)
    metrics = metrics_by_date(y, score, dates)
    assert metrics["roc_auc"] == pytest.approx(1.0)
    assert metrics["positives"] == 2 and metrics["rows"] == 4


def test_weighted_auc_matches_scikit_learn_with_ties_and_zero_weights() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.2
    score = np.round(rng.random(400) + 0.5 * y, 1)  # coarse: many ties
    weight = rng.poisson(1.0, 400).astype(float)
    expected = roc_auc_score(y, score, sample_weight=weight)
    assert weighted_auc(y.astype(float), tie_groups(score), weight) == pytest.approx(expected)
    assert weighted_auc(y.astype(float), tie_groups(score), np.ones(400)) == pytest.approx(
        roc_auc_score(y, score)
    )


def test_gain_share_interval_is_exact_for_the_oracle_and_brackets_a_noisy_model() -> None:
    rng = np.random.default_rng(4)
    truth = rng.random(6000) * 0.3
    y = (rng.random(6000) < truth).astype(float)
    dates = np.repeat(["2025-08-01", "2025-09-01"], 3000)
    # the oracle against itself: every draw gives a share of exactly 1
    assert gain_share_interval(y, truth, truth, dates) == pytest.approx((1.0, 1.0))
    noisy = truth + rng.normal(0.0, 0.1, 6000)
    low, high = gain_share_interval(y, noisy, truth, dates)
    point = np.mean([(roc_auc_score(y[dates == d], noisy[dates == d]) - 0.5) for d in np.unique(dates)]) / (
        np.mean([roc_auc_score(y[dates == d], truth[dates == d]) for d in np.unique(dates)]) - 0.5
    )
    assert 0 < low < point < high < 1.05
    assert gain_share_interval(y, noisy, truth, dates) == (low, high)  # a fixed seed: the same interval
    # ten times the rows give a tighter interval
    many = np.tile(np.arange(6000), 10)
    low10, high10 = gain_share_interval(y[many], noisy[many], truth[many], np.tile(dates, 10))
    assert high10 - low10 < (high - low) / 2


def test_the_table_prints_each_share_with_its_interval() -> None:
    from rich.console import Console

    from nba.cli import evaluation_tables
    from training.evaluate import Evaluation

    aucs = {"model": 0.68, "popularity": 0.5, "rules": 0.55, "logistic": 0.6, "oracle": 0.7}
    per_action = pd.DataFrame(
        [
            {"action": a, "scorer": s, "roc_auc": v}
            for a in ("health_formula_upgrade", "eye_exam")
            for s, v in aucs.items()
        ]
    )
    ranking = pd.DataFrame([{"scorer": s, "map_3": 0.5, "ndcg_3": 0.6, "members": 10} for s in SCORERS])
    shares = pd.DataFrame(
        [
            {"action": "health_formula_upgrade", "share": 0.9, "low": 0.78, "high": 0.97},
            {"action": "eye_exam", "share": 0.9, "low": float("nan"), "high": float("nan")},
        ]
    )
    console = Console(width=120, record=True)  # the CLI's width in logs and pipes
    console.print(evaluation_tables(Evaluation(per_action, ranking, shares)))
    text = console.export_text()
    assert "…" not in text  # nothing cut, not even the longest action id
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 2}
    assert "0.680" in lines["health_formula_upgrade"] and "0.78-0.97" in lines["health_formula_upgrade"]
    assert "0.90" in lines["eye_exam"] and "nan" not in lines["eye_exam"]
    assert "0.500" in lines["popularity"] and "0.600" in lines["popularity"]  # MAP@3, NDCG@3
