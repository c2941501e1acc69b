"""Metrics of a propensity model: ranking, calibration and lift."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def lift_at(y: np.ndarray, score: np.ndarray, share: float) -> float:
    """Positive rate among the top ``share`` of scores, over the overall positive rate."""
    y = np.asarray(y, dtype=float)
    if y.size == 0 or y.mean() == 0:
        return float("nan")
    top = max(1, round(share * y.size))
    order = np.argsort(-np.asarray(score), kind="stable")[:top]
    return float(y[order].mean() / y.mean())


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted gap between predicted and observed rates over equal-count bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if y.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, y.size)):
        total += chunk.size * abs(p[chunk].mean() - y[chunk].mean())
    return total / y.size


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Ranking metrics for any score; Brier and ECE only when the scores are probabilities."""
    y, p = np.asarray(y), np.asarray(p, dtype=float)
    both = 0 < y.sum() < y.size
    probabilities = bool(y.size) and bool(((p >= 0) & (p <= 1)).all())
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)) if probabilities else float("nan"),
        "lift_10": lift_at(y, p, 0.10),
        "lift_20": lift_at(y, p, 0.20),
        "ece": expected_calibration_error(y, p) if probabilities else float("nan"),
        "positives": float(y.sum()),
        "rows": float(y.size),
    }


def tie_groups(score: np.ndarray) -> np.ndarray:
    """Rank of each score's tie group, lowest first (equal scores share a group)."""
    return np.unique(np.asarray(score, dtype=float), return_inverse=True)[1]


def weighted_auc(y: np.ndarray, groups: np.ndarray, weight: np.ndarray) -> float:
    """ROC-AUC with row weights, from the scores' tie groups (``tie_groups``): the weighted
    share of positive-negative pairs ranked the right way, ties counting half."""
    size = int(groups.max()) + 1 if groups.size else 0
    pos = np.bincount(groups, weights=weight * y, minlength=size)
    neg = np.bincount(groups, weights=weight * (1 - y), minlength=size)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))


def gain_share_interval(
    y: np.ndarray, model: np.ndarray, oracle: np.ndarray, dates: np.ndarray,
    draws: int = 200, level: float = 0.9, seed: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """Bootstrap interval of the share of the oracle's gain, (AUC_model - 0.5) / (AUC_oracle - 0.5),
    with both AUCs computed within each as-of date and averaged over the dates.

    Each draw re-weighs the test rows with Poisson(1) counts, the same counts for the model and
    the oracle, so the interval shows how much of a shortfall the test sample alone can explain.
    The seed is fixed: the same scores give the same interval."""
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    parts = [(y[dates == d], tie_groups(model[dates == d]), tie_groups(oracle[dates == d]))
             for d in np.unique(dates)]  # fmt: skip
    shares: list[float] = []
    for _ in range(draws):
        m, o = [], []
        for yd, gm, go in parts:
            w = rng.poisson(1.0, yd.size).astype(float)
            m.append(weighted_auc(yd, gm, w))
            o.append(weighted_auc(yd, go, w))
        am, ao = (
            np.nanmean(m) if np.isfinite(m).any() else np.nan,
            np.nanmean(o) if np.isfinite(o).any() else np.nan,
        )
        if ao > 0.5:
            shares.append(float((am - 0.5) / (ao - 0.5)))
    if not shares:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2
    return (float(np.quantile(shares, tail)), float(np.quantile(shares, 1 - tail)))
