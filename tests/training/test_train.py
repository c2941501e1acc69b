"""nba train and nba promote on a small world, against a throw-away MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from features import registry
from nba import vocab
from nba.catalogue import default_catalogue
from nba.errors import ConfigError
from training import tracking
from training.models import ModelConfig, model_features
from training.pipeline import TrainResult, train_all
from training.promote import promote


def test_every_action_is_registered_as_challenger(
    trained: TrainResult, mlflow_home: tuple[str, Path]
) -> None:
    client = MlflowClient(tracking_uri=mlflow_home[0], registry_uri=mlflow_home[0])
    assert sorted(a.action_id for a in trained.actions) == sorted(vocab.ACTION_IDS)
    for action_id in vocab.ACTION_IDS:
        version = client.get_model_version_by_alias(tracking.model_name(action_id), tracking.CHALLENGER)
        assert version.tags["purpose"] == vocab.ACTION_PURPOSES[action_id]


def test_child_runs_live_in_the_parent_runs_experiment(
    trained: TrainResult, mlflow_home: tuple[str, Path]
) -> None:
    client = MlflowClient(tracking_uri=mlflow_home[0], registry_uri=mlflow_home[0])
    parent = client.get_run(trained.parent_run_id)
    for action in trained.actions:
        child = client.get_run(action.run_id)
        assert child.info.experiment_id == parent.info.experiment_id
        assert child.data.tags["mlflow.parentRunId"] == trained.parent_run_id


def test_offers_models_never_see_health_claims(trained: TrainResult, mlflow_home: tuple[str, Path]) -> None:
    client = MlflowClient(tracking_uri=mlflow_home[0], registry_uri=mlflow_home[0])
    for action_id in ("prevoyance", "home_insurance", "funeral_cover"):
        version = client.get_model_version_by_alias(tracking.model_name(action_id), tracking.CHALLENGER)
        features = json.loads(version.tags["features"])
        assert features
        assert all(registry.BY_NAME[f].category != "health_claims" for f in features)
        assert "health_claims" not in json.loads(version.tags["feature_categories"])
    upgrade = client.get_model_version_by_alias("nba-health_formula_upgrade", tracking.CHALLENGER)
    assert "health_claims" in json.loads(upgrade.tags["feature_categories"])


def test_training_refuses_a_forbidden_feature() -> None:
    with pytest.raises(ConfigError, match="months_since_dental \\(health_claims\\)"):
        model_features(default_catalogue()["prevoyance"], ["age", "months_since_dental"])
    with pytest.raises(ConfigError, match="sex_female"):
        model_features(default_catalogue()["breast_screening"], ["age", "sex_female"])


def test_each_run_logs_metrics_and_artifacts(trained: TrainResult, mlflow_home: tuple[str, Path]) -> None:
    client = MlflowClient(tracking_uri=mlflow_home[0])
    run = client.get_run(trained.actions[0].run_id)
    assert run.data.tags["mlflow.parentRunId"] == trained.parent_run_id
    for metric in ("roc_auc", "pr_auc", "brier", "lift_10", "lift_20", "ece"):
        assert metric in run.data.metrics
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_card.md", "shap_importance.csv", "shap_importance.png", "reliability.png",
            "lift_curve.png", "features.json"} <= names  # fmt: skip
    assert run.data.tags["feature_set_version"] == registry.feature_set_version()


def test_promote_without_champion_then_against_it(
    trained: TrainResult, small_world: Path, mlflow_home: tuple[str, Path]
) -> None:
    uri, root = mlflow_home
    first = promote(uri, ["dental_checkup", "prevoyance"])
    assert all(d.promoted and d.reason == "no champion yet" for d in first)
    again = promote(uri, ["dental_checkup"])
    assert not again[0].promoted and "already the champion" in again[0].reason
    weaker = ModelConfig(n_estimators=2, early_stopping_rounds=1, num_leaves=2, max_depth=1)
    train_all(small_world, experiment="test", tracking_uri=uri, artifact_root=root, config=weaker, months=10)
    strict = promote(uri, ["dental_checkup"])[0]
    assert "AUC" in strict.reason and "lift@10%" in strict.reason
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("nba-dental_checkup", tracking.CHAMPION)
    expected = strict.challenger if strict.promoted else strict.champion
    assert str(champion.version) == expected
    assert "promotion_reason" in client.get_model_version("nba-dental_checkup", first[0].challenger).tags
