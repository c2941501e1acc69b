"""Shared fixtures: small worlds from the project's own generator, built once per session."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from features.synthetic import WorldConfig, generate_world
from training.models import ModelConfig
from training.pipeline import TrainResult, train_all

FAST = ModelConfig(n_estimators=60, early_stopping_rounds=15)


def make_world(root: Path, members: int, months: int, seed: int) -> Path:
    out = root / f"world-{members}-{months}-{seed}"
    generate_world(WorldConfig(members=members, months=months, seed=seed, workers=1), out)
    return out


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 members over 24 months: enough of every table, fast to build."""
    return make_world(tmp_path_factory.mktemp("worlds"), members=2000, months=24, seed=7)


@pytest.fixture(scope="session")
def world_20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 members over the default 48 months, the size CALIBRATION checks are stated for."""
    out = tmp_path_factory.mktemp("worlds") / "world-20000"
    generate_world(WorldConfig(members=20_000, seed=1), out)
    return out


@pytest.fixture(scope="session")
def mlflow_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("mlruns")
    return f"sqlite:///{root / 'mlflow.db'}", root


@pytest.fixture(scope="session")
def trained(small_world: Path, mlflow_home: tuple[str, Path]) -> TrainResult:
    """Every action trained once on the small world (a fast configuration), as challenger."""
    uri, root = mlflow_home
    return train_all(
        small_world, experiment="test", tracking_uri=uri, artifact_root=root, config=FAST, months=10
    )


@dataclass(frozen=True)
class Served:
    """A small world published for serving: profiles, consent, champion models and API keys."""

    world: Path
    database_url: str
    tracking_uri: str
    keys: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {"NBA_DATABASE_URL": self.database_url, "NBA_MLFLOW_TRACKING_URI": self.tracking_uri}


@pytest.fixture(scope="session")
def served(
    small_world: Path,
    trained: TrainResult,
    mlflow_home: tuple[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Served:
    from features.publish import publish_profiles
    from serving.consent import ConsentStore
    from serving.db import open_engine
    from serving.keys import KeyStore
    from training.promote import promote

    home = tmp_path_factory.mktemp("serving")
    shutil.copy(mlflow_home[0].removeprefix("sqlite:///"), home / "mlflow.db")  # our own aliases
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    promote(tracking_uri, [a.action_id for a in trained.actions])
    url = f"sqlite:///{home / 'nba.db'}"
    extract = json.loads((small_world / "extract.json").read_text())["extract_date"]
    publish_profiles(small_world, dt.date.fromisoformat(extract) + dt.timedelta(days=1), url)
    engine = open_engine(url)
    ConsentStore(engine).import_world(small_world)
    keys = {role: KeyStore(engine).create(role) for role in ("app", "compliance", "admin")}
    engine.dispose()
    return Served(small_world, url, tracking_uri, keys)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (NBA_REQUIRE_SERVICES=1) a test skipped for a missing service or browser fails."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("NBA_REQUIRE_SERVICES") == "1":
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but NBA_REQUIRE_SERVICES=1 requires it to run: {reason}"
