"""`nba train`: every action's model in one MLflow parent run, registered as challenger."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from features.registry import feature_set_version
from nba.catalogue import Action, Catalogue, default_catalogue
from training import tracking
from training.dataset import AS_OF_DATES, SplitPlan, build_training_frame, plan_for
from training.models import FittedModel, ModelConfig, evaluate_model, fit_action, model_features
from training.promote import log_test_frame


@dataclass
class ActionResult:
    action_id: str
    run_id: str
    version: str
    metrics: dict[str, float]


@dataclass
class TrainResult:
    parent_run_id: str
    experiment: str
    actions: list[ActionResult] = field(default_factory=list)


def data_fingerprint(data: Path) -> str:
    """A short hash of the extract manifest and of every source table's size."""
    data = Path(data)
    parts = [(data / "extract.json").read_text()]
    for path in sorted(data.glob("*.parquet")):
        parts.append(f"{path.name}:{path.stat().st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def train_all(
    data: Path,
    experiment: str = "nba",
    tracking_uri: str = "sqlite:///mlruns/mlflow.db",
    artifact_root: Path = Path("mlruns"),
    config: ModelConfig | None = None,
    catalogue: Catalogue | None = None,
    months: int = AS_OF_DATES,
    on_action: Callable[[str], None] | None = None,
) -> TrainResult:
    config = config or ModelConfig()
    catalogue = catalogue or default_catalogue()
    plan = plan_for(Path(data), months=months)
    frame = build_training_frame(Path(data), catalogue, plan)
    client = tracking.configure(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, experiment, artifact_root)
    context = _context(data, catalogue, plan, config)
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as parent:
        mlflow.log_params({f"model.{k}": v for k, v in config.as_dict().items()})
        mlflow.set_tags({k: str(v) for k, v in context.items()})
        log_test_frame(frame[frame["split"] == "test"])
        result = TrainResult(parent.info.run_id, experiment)
        for action in catalogue.actions:
            if on_action:
                on_action(action.id)
            result.actions.append(_train_one(client, frame, action, config, context))
    return result


def _context(data: Path, catalogue: Catalogue, plan: SplitPlan, config: ModelConfig) -> dict[str, object]:
    return {
        "data_fingerprint": data_fingerprint(data),
        "feature_set_version": feature_set_version(),
        "catalogue_version": catalogue.version,
        "train_dates": [d.isoformat() for d in plan.train],
        "valid_dates": [d.isoformat() for d in plan.valid],
        "valid_share": plan.valid_share,
        "test_dates": [d.isoformat() for d in plan.test],
        "num_leaves": config.num_leaves,
    }


def _split(frame: pd.DataFrame, action_id: str) -> dict[str, pd.DataFrame]:
    """The action's eligible rows of each split, taken from the frame in one step each (not
    through a copy of every eligible row first: at scale that copy is the size of the frame)."""
    eligible = frame[f"eligible_{action_id}"].to_numpy(dtype=bool)
    split = frame["split"].to_numpy()
    return {name: frame[eligible & (split == name)] for name in ("train", "valid", "test")}


def _train_one(
    client: MlflowClient, frame: pd.DataFrame, action: Action, config: ModelConfig, context: dict[str, object]
) -> ActionResult:
    parts = _split(frame, action.id)
    features = model_features(action)
    experiment_id = mlflow.active_run().info.experiment_id  # type: ignore[union-attr]
    with mlflow.start_run(experiment_id=experiment_id, nested=True, run_name=action.id) as run:
        model = fit_action(parts["train"], parts["valid"], action, features, config)
        metrics = evaluate_model(model, parts["test"])
        mlflow.log_params({"action_id": action.id, "purpose": action.purpose,
                           "n_features": len(features), "best_iteration": model.best_iteration,
                           "scale_pos_weight": round(model.scale_pos_weight, 4),
                           "rows_train": len(parts["train"]), "rows_valid": len(parts["valid"])})  # fmt: skip
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.set_tags({k: str(v) for k, v in context.items()} | {"action_id": action.id})
        with tempfile.TemporaryDirectory() as tmp:
            tracking.log_action_artifacts(Path(tmp), action, model, parts["test"], context, metrics)
        version = _register(client, model, action.purpose)
    return ActionResult(action.id, run.info.run_id, version, metrics)


def _register(client: MlflowClient, model: FittedModel, purpose: str) -> str:
    tags = {
        "purpose": purpose,
        "features": json.dumps(model.features),
        "feature_categories": json.dumps(sorted(set(model.categories.values()))),
        "calibration": json.dumps(list(model.calibration)),
        "best_iteration": str(model.best_iteration),
        "feature_set_version": feature_set_version(),
    }
    return tracking.register(client, tracking.model_name(model.action_id), model.booster, tags)
