"""`nba promote`: the challenger becomes champion when it passes the gates.

Both models are scored on the challenger's own test data (stored with its training run),
so the comparison is like for like. Every decision says why, and a promotion is recorded
as tags on the model version.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from training import tracking
from training.metrics import binary_metrics
from training.models import matrix

TEST_FRAME = "test_frame.parquet"


@dataclass(frozen=True)
class Gates:
    max_auc_drop: float = 0.005
    """The challenger's ROC-AUC may be at most this much lower than the champion's."""
    min_lift_ratio: float = 1.0
    """The challenger's lift at 10% must be at least this times the champion's."""


@dataclass(frozen=True)
class Decision:
    action_id: str
    promoted: bool
    reason: str
    challenger: str | None
    champion: str | None


def version_by_alias(client: MlflowClient, name: str, alias: str) -> object | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def registered_scores(client: MlflowClient, version: object, frame: pd.DataFrame) -> np.ndarray:
    """Calibrated propensities of a registered model version, on the features it recorded."""
    tags = version.tags  # type: ignore[attr-defined]
    features = json.loads(tags["features"])
    a, b = json.loads(tags["calibration"])
    booster = mlflow.lightgbm.load_model(f"models:/{version.name}/{version.version}")  # type: ignore[attr-defined]
    margin = booster.predict(
        matrix(frame, features), num_iteration=int(tags["best_iteration"]), raw_score=True
    )
    return 1.0 / (1.0 + np.exp(-(a * margin + b)))


def _test_frame(client: MlflowClient, version: object, action_id: str) -> pd.DataFrame:
    run = client.get_run(version.run_id)  # type: ignore[attr-defined]
    parent = run.data.tags.get("mlflow.parentRunId", run.info.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(parent, TEST_FRAME, tmp)
        frame = pd.read_parquet(path)
    return frame[frame[f"eligible_{action_id}"]]


def decide(client: MlflowClient, action_id: str, gates: Gates) -> Decision:
    name = tracking.model_name(action_id)
    challenger = version_by_alias(client, name, tracking.CHALLENGER)
    champion = version_by_alias(client, name, tracking.CHAMPION)
    if challenger is None:
        return Decision(action_id, False, "no challenger registered: run nba train first", None, None)
    c_version = str(challenger.version)  # type: ignore[attr-defined]
    if champion is None:
        return Decision(action_id, True, "no champion yet", c_version, None)
    k_version = str(champion.version)  # type: ignore[attr-defined]
    if k_version == c_version:
        return Decision(action_id, False, "the challenger is already the champion", c_version, k_version)
    frame = _test_frame(client, challenger, action_id)
    y = frame[f"label_{action_id}"].to_numpy()
    new = binary_metrics(y, registered_scores(client, challenger, frame))
    old = binary_metrics(y, registered_scores(client, champion, frame))
    auc_ok = new["roc_auc"] >= old["roc_auc"] - gates.max_auc_drop
    lift_ok = new["lift_10"] >= gates.min_lift_ratio * old["lift_10"]
    summary = (
        f"AUC {new['roc_auc']:.4f} vs {old['roc_auc']:.4f} (may drop {gates.max_auc_drop}), "
        f"lift@10% {new['lift_10']:.2f} vs {old['lift_10']:.2f} on {len(y):,} test rows"
    )
    verdict = "passes the gates" if auc_ok and lift_ok else "fails the gates"
    return Decision(action_id, auc_ok and lift_ok, f"{verdict}: {summary}", c_version, k_version)


def promote(tracking_uri: str, action_ids: list[str], gates: Gates | None = None) -> list[Decision]:
    client = tracking.configure(tracking_uri)
    decisions = []
    for action_id in action_ids:
        decision = decide(client, action_id, gates or Gates())
        if decision.promoted and decision.challenger:
            name = tracking.model_name(action_id)
            client.set_registered_model_alias(name, tracking.CHAMPION, decision.challenger)
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            client.set_model_version_tag(name, decision.challenger, "promoted_at", stamp)
            client.set_model_version_tag(name, decision.challenger, "promotion_reason", decision.reason)
        decisions.append(decision)
    return decisions


def log_test_frame(frame: pd.DataFrame) -> None:
    """Store the test split with the parent run, for like-for-like promotion."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / TEST_FRAME
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))
