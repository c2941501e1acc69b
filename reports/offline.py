"""Offline: `nba train` runs read back from MLflow, per action, for the experiment report.

A train run is a parent run with one child run per action (``tags.mlflow.parentRunId``; the
children may sit in another experiment, so they are searched in all). Per action it brings its
test metrics, ``lift_curve.csv``, ``shap_importance.csv`` and ``features.json``; the reliability
curve is recomputed from the parent's ``test_frame.parquet`` and the child's logged model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.sources import NotFoundError, ReportError

log = logging.getLogger(__name__)

TRAIN_RUN = "train"
TEST_FRAME = "test_frame.parquet"  # training.promote.TEST_FRAME
RELIABILITY_ROWS = 50_000
CACHED_RUNS = 16
_CACHE: dict[tuple[str, str, bool], TrainRun] = {}
_LOCK = threading.Lock()
METRICS = {
    "roc_auc": ("ROC-AUC", True),
    "pr_auc": ("PR-AUC", True),
    "lift_10": ("lift at 10%", True),
    "lift_20": ("lift at 20%", True),
    "brier": ("Brier score", False),
    "ece": ("expected calibration error", False),
    "positives": ("test positives", True),
    "rows": ("test rows", True),
}
"""Metric name in the child runs (training.metrics.binary_metrics) → label, and whether higher is better."""


@dataclass
class ActionRun:
    action_id: str
    run_id: str
    metrics: dict[str, float]
    lift: pd.DataFrame | None = None
    shap: pd.DataFrame | None = None
    reliability: pd.DataFrame | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class TrainRun:
    run_id: str
    experiment: str
    started: dt.datetime
    params: dict[str, str]
    tags: dict[str, str]
    actions: dict[str, ActionRun] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.run_id[:8]}"


def client_for(tracking_uri: str) -> Any:
    """An MLflow client on ``tracking_uri``; a missing SQLite store is an error, not a new one."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        raise NotFoundError(f"the MLflow store {tracking_uri} does not exist (NBA_MLFLOW_TRACKING_URI)")
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _all_experiments(client: Any) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def _is_child(run: Any) -> bool:
    return "mlflow.parentRunId" in run.data.tags


def _get_run(client: Any, run_id: str, tracking_uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise NotFoundError(f"unknown run id {run_id!r}: {tracking_uri} has no such run") from None
    if _is_child(run):
        parent = run.data.tags["mlflow.parentRunId"]
        raise ReportError(
            f"run {run_id} is the child run {run.info.run_name!r} of train run {parent}; "
            f"name the train run ({parent}) instead"
        )
    return run


def latest_train_runs(client: Any, experiment_ids: list[str], n: int) -> list[Any]:
    """The ``n`` latest finished top-level ``train`` runs, newest first."""
    if not experiment_ids:
        return []
    found = client.search_runs(
        experiment_ids,
        filter_string=f"attributes.run_name = '{TRAIN_RUN}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    return [r for r in found if not _is_child(r)][:n]


def _experiment_run(client: Any, name: str, tracking_uri: str) -> Any:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments())
        raise NotFoundError(f"unknown experiment {name!r} in {tracking_uri}; it has {names}")
    runs = latest_train_runs(client, [experiment.experiment_id], 1)
    if not runs:
        raise ReportError(f"experiment {name!r} has no finished `nba train` run")
    return runs[0]


def resolve(client: Any, tracking_uri: str, runs: list[str], experiments: list[str]) -> list[Any]:
    """The train runs named (runs, then each experiment's latest), or the two latest of all."""
    found = [_get_run(client, r, tracking_uri) for r in runs]
    found += [_experiment_run(client, e, tracking_uri) for e in experiments]
    if not runs and not experiments:
        found = latest_train_runs(client, _all_experiments(client), 2)[::-1]
        if not found:
            raise NotFoundError(f"no finished `nba train` run in {tracking_uri}: run `nba train` first")
    unique: dict[str, Any] = {}
    for run in found:
        unique.setdefault(run.info.run_id, run)
    return list(unique.values())


def load_runs(
    tracking_uri: str, runs: list[str], experiments: list[str], reliability: bool = True
) -> list[TrainRun]:
    """The train runs named, with each action's metrics and artifacts (oldest first when defaulted)."""
    client = client_for(tracking_uri)
    out = []
    for run in resolve(client, tracking_uri, runs, experiments):
        key = (tracking_uri, run.info.run_id, reliability)
        with _LOCK:
            cached = _CACHE.get(key)
        if cached is None:
            cached = _train_run(client, run, reliability)
            if run.info.status == "FINISHED":  # a finished run no longer changes
                with _LOCK:
                    while len(_CACHE) >= CACHED_RUNS:
                        _CACHE.pop(next(iter(_CACHE)))
                    _CACHE[key] = cached
        out.append(cached)
    return out


def _train_run(client: Any, run: Any, reliability: bool) -> TrainRun:
    experiment = client.get_experiment(run.info.experiment_id).name
    started = dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC)
    train = TrainRun(run.info.run_id, experiment, started, dict(run.data.params), dict(run.data.tags))
    children = client.search_runs(
        _all_experiments(client), filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    if not children:
        raise ReportError(
            f"run {run.info.run_id} ({run.info.run_name!r} in {experiment!r}) has no per-action child runs; "
            "expected the parent run of `nba train`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        frame = _test_frame(client, run.info.run_id, Path(tmp)) if reliability else None
        for child in children:
            action = _action_run(client, child, Path(tmp), frame, reliability)
            train.actions[action.action_id] = action
    return train


def _download(client: Any, run_id: str, name: str, tmp: Path) -> Path | None:
    try:
        return Path(client.download_artifacts(run_id, name, str(tmp / run_id)))
    except Exception:  # missing artifact: the report says so
        return None


def _test_frame(client: Any, run_id: str, tmp: Path) -> pd.DataFrame | None:
    path = _download(client, run_id, TEST_FRAME, tmp)
    return pd.read_parquet(path) if path is not None else None


def _action_run(
    client: Any, child: Any, tmp: Path, frame: pd.DataFrame | None, reliability: bool
) -> ActionRun:
    action_id = child.data.tags.get("action_id") or child.data.params.get("action_id") or child.info.run_name
    run_id = child.info.run_id
    action = ActionRun(action_id, run_id, dict(child.data.metrics))
    lift = _download(client, run_id, "lift_curve.csv", tmp)
    shap = _download(client, run_id, "shap_importance.csv", tmp)
    action.lift = pd.read_csv(lift) if lift else None
    action.shap = pd.read_csv(shap) if shap else None
    for name, value in (("lift_curve.csv", lift), ("shap_importance.csv", shap)):
        if value is None:
            action.problems.append(f"no {name}")
    if reliability and frame is None:
        action.problems.append(f"no reliability curve: its train run has no {TEST_FRAME}")
    elif reliability and frame is not None:
        try:
            action.reliability = _reliability(client, child, frame, tmp)
        except Exception as exc:  # the curve is optional: say why it is missing
            action.problems.append(f"no reliability curve: {type(exc).__name__}: {exc}".splitlines()[0][:200])
    return action


def _booster(client: Any, child: Any, tmp: Path) -> Any:
    import lightgbm as lgb
    import mlflow

    models = client.search_logged_models(
        experiment_ids=[child.info.experiment_id], filter_string=f"source_run_id = '{child.info.run_id}'"
    )
    if not models:
        raise ReportError(f"run {child.info.run_id} logged no model")
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{models[0].artifact_location}/model.lgb", dst_path=str(tmp / child.info.run_id)
    )
    return lgb.Booster(model_file=path)


def _reliability(client: Any, child: Any, frame: pd.DataFrame, tmp: Path) -> pd.DataFrame:
    """Mean predicted and observed rate in ten equal-count bins of the test split (eligible rows)."""
    from training.models import matrix

    spec_path = _download(client, child.info.run_id, "features.json", tmp)
    if spec_path is None:
        raise ReportError("no features.json")
    spec = json.loads(spec_path.read_text())
    action_id = child.data.tags.get("action_id", child.info.run_name)
    rows = frame[frame[f"eligible_{action_id}"]]
    if len(rows) > RELIABILITY_ROWS:
        rows = rows.sample(n=RELIABILITY_ROWS, random_state=0)
    booster = _booster(client, child, tmp)
    margin = booster.predict(
        matrix(rows, spec["features"]), num_iteration=spec["best_iteration"], raw_score=True
    )
    a, b = spec["calibration"]
    p = 1.0 / (1.0 + np.exp(-(a * np.asarray(margin) + b)))
    y = rows[f"label_{action_id}"].to_numpy(dtype=float)
    order = np.argsort(p, kind="stable")
    bins = [chunk for chunk in np.array_split(order, 10) if chunk.size]
    return pd.DataFrame({
        "predicted": [float(p[c].mean()) for c in bins],
        "observed": [float(y[c].mean()) for c in bins],
        "rows": [int(c.size) for c in bins],
    })  # fmt: skip
