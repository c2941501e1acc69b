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
