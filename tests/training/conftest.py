"""A small world trained once per session for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.models import ModelConfig
from training.pipeline import TrainResult, train_all

FAST = ModelConfig(n_estimators=60, early_stopping_rounds=15)


@pytest.fixture(scope="session")
def mlflow_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("mlruns")
    return f"sqlite:///{root / 'mlflow.db'}", root


@pytest.fixture(scope="session")
def trained(small_world: Path, mlflow_home: tuple[str, Path]) -> TrainResult:
    uri, root = mlflow_home
    return train_all(
        small_world, experiment="test", tracking_uri=uri, artifact_root=root, config=FAST, months=10
    )
