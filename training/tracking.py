"""MLflow: where runs go, the artifacts of each action's run, and the registry."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import lightgbm as lgb
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from features import registry
from nba.catalogue import Action
from training.models import FittedModel, matrix

CHALLENGER, CHAMPION = "challenger", "champion"
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "numpy", "pandas"]


def model_name(action_id: str) -> str:
    return f"nba-{action_id}"


def configure(tracking_uri: str) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (telemetry off); artifacts go under mlruns/."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars on downloads
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # keep the command's output readable
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = (Path(artifact_root).resolve() / "artifacts").as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def register(
    client: MlflowClient, name: str, booster: lgb.Booster, tags: dict[str, str], alias: str = CHALLENGER
) -> str:
    """Log ``booster`` in the active run, register it as a new version of ``name`` with ``tags``
    and point ``alias`` at it; returns the version."""
    info = mlflow.lightgbm.log_model(booster, name="model", pip_requirements=PIP_REQUIREMENTS)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    version = str(client.create_model_version(name, info.model_uri, run_id=run_id).version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    return version


def shap_importance(model: FittedModel, frame: pd.DataFrame, rows: int = 2000) -> pd.DataFrame:
    """Mean absolute exact TreeSHAP contribution per feature on a sample of ``frame``."""
    sample = frame.sample(n=min(rows, len(frame)), random_state=0) if len(frame) else frame
    x = matrix(sample, model.features)
    contrib = np.asarray(model.booster.predict(x, num_iteration=model.best_iteration, pred_contrib=True))
    mean_abs = np.abs(contrib[:, :-1]).mean(axis=0) if len(sample) else np.zeros(len(model.features))
    table = pd.DataFrame(
        {
            "feature": model.features,
            "label_fr": [registry.BY_NAME[f].label_fr for f in model.features],
            "category": [registry.BY_NAME[f].category for f in model.features],
            "mean_abs_shap": mean_abs,
        }
    )
    return table.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def _plot_importance(table: pd.DataFrame, path: Path, title: str) -> None:
    top = table.head(15)[::-1]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(top["feature"], top["mean_abs_shap"], color="#1f6f8b")
    ax.set_xlabel("mean |SHAP| (log-odds)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_reliability(y: np.ndarray, p: np.ndarray, path: Path, title: str) -> None:
    order = np.argsort(p)
    bins = [b for b in np.array_split(order, 10) if b.size]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, max(p.max(initial=0.01), 0.01)], [0, max(p.max(initial=0.01), 0.01)], "--", color="grey")
    ax.plot([p[b].mean() for b in bins], [y[b].mean() for b in bins], "o-", color="#c0392b")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def lift_curve(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    order = np.argsort(-p, kind="stable")
    shares = np.arange(1, 11) / 10
    base = y.mean() if y.size and y.mean() > 0 else np.nan
    lifts = [y[order[: max(1, round(s * y.size))]].mean() / base for s in shares]
    return pd.DataFrame({"share": shares, "lift": lifts})


def _plot_lift(curve: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(curve["share"], curve["lift"], "o-", color="#27ae60")
    ax.axhline(1.0, color="grey", linestyle="--")
    ax.set_xlabel("share of members contacted (by score)")
    ax.set_ylabel("lift")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def model_card(action: Action, model: FittedModel, metrics: dict[str, float], context: dict[str, Any]) -> str:
    categories = sorted(set(model.categories.values()))
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    return f"""# Model card: {model_name(action.id)}

- **Action**: {action.title["en"]} (`{action.id}`), kind `{action.kind}`
- **Purpose**: `{action.purpose}`; feature categories used: {", ".join(categories)}
- **Features**: {len(model.features)} from feature set `{context["feature_set_version"]}`
- **Catalogue**: version `{context["catalogue_version"]}`; eligibility `{json.dumps(list(action.eligible))}`
- **Data**: world `{context["data_fingerprint"]}`; as-of dates train {context["train_dates"]},
  validation {context["valid_dates"]} (a share {context["valid_share"]} of members, held out of
  training from the first validation window on), test {context["test_dates"]}
- **Label**: {json.dumps(dict(action.label))} within 90 days after the as-of date
- **Model**: LightGBM, {model.best_iteration} trees of at most {context["num_leaves"]} leaves,
  positives weighted x{model.scale_pos_weight:.1f}, Platt calibration a={model.calibration[0]:.3f},
  b={model.calibration[1]:.3f} fitted on the validation split

## Test metrics

| metric | value |
| --- | --- |
{rows}

## Limits

- Trained on a synthetic world; propensities describe that world, not real members.
- Only members eligible under the catalogue's rule are scored; sex is never a feature.
- Offers models never see health data (`health_claims`) unless their purpose is
  `offers_health_data`, which needs the member's explicit consent at serving time.
"""


def log_action_artifacts(
    out: Path, action: Action, model: FittedModel, test: pd.DataFrame, context: dict[str, Any],
    metrics: dict[str, float],
) -> None:  # fmt: skip
    """Write and log the SHAP table and plot, reliability plot, lift curve and model card."""
    out.mkdir(parents=True, exist_ok=True)
    y = test[f"label_{action.id}"].to_numpy()
    p = model.predict(matrix(test, model.features))
    importance = shap_importance(model, test)
    importance.to_csv(out / "shap_importance.csv", index=False)
    _plot_importance(importance, out / "shap_importance.png", f"{action.id}: global SHAP importance")
    _plot_reliability(y, p, out / "reliability.png", f"{action.id}: reliability (test)")
    curve = lift_curve(y, p)
    curve.to_csv(out / "lift_curve.csv", index=False)
    _plot_lift(curve, out / "lift_curve.png", f"{action.id}: lift (test)")
    (out / "model_card.md").write_text(model_card(action, model, metrics, context))
    features = {"features": model.features, "categories": model.categories, "purpose": action.purpose,
                "calibration": list(model.calibration), "best_iteration": model.best_iteration}  # fmt: skip
    (out / "features.json").write_text(json.dumps(features, indent=2))
    mlflow.log_artifacts(str(out))
