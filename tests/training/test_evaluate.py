"""nba evaluate: ranking metrics computed by hand, and the whole evaluation on a small world."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.evaluate import SCORERS, ranking_metrics
from training.metrics import binary_metrics, lift_at


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


def test_metrics_are_computed_within_each_as_of_date() -> None:
    from training.evaluate import metrics_by_date

    y = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.2, 0.1])  # a perfect ranking on each date, not across them
    dates = np.array(["2025-08-01", "2025-08-01", "2025-09-01", "2025-09-01"])
    assert binary_metrics(y, score)["roc_auc"] == pytest.approx(0.75)
    metrics = metrics_by_date(y, score, dates)
    assert metrics["roc_auc"] == pytest.approx(1.0)
    assert metrics["positives"] == 2 and metrics["rows"] == 4
