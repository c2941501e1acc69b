"""Model hyper-parameters from a TOML file (`nba train --config`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba.errors import ConfigError
from training.config import load_model_config
from training.models import ModelConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.toml"
    path.write_text(text)
    return path


def test_keys_given_replace_defaults_and_the_rest_stay(tmp_path: Path) -> None:
    config = load_model_config(write(tmp_path, 'num_leaves = 15\nlearning_rate = 1\nbalance = "sqrt"\n'))
    assert config.num_leaves == 15 and config.balance == "sqrt"
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.max_depth == ModelConfig().max_depth and config.seed == ModelConfig().seed


def test_a_model_table_is_read_too(tmp_path: Path) -> None:
    assert load_model_config(write(tmp_path, "[model]\nmax_depth = 3\n")).max_depth == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("num_leaf = 7", "unknown key 'num_leaf'; expected keys among"),
        ('num_leaves = "7"', "num_leaves must be an integer from 2 to 63; got '7'"),
        ("num_leaves = 7.5", "num_leaves must be an integer from 2 to 63; got 7.5"),
        ("num_leaves = 200", "num_leaves must be an integer from 2 to 63; got 200"),
        ("learning_rate = 0", "learning_rate must be a number in (0, 1]; got 0"),
        ("seed = true", "seed must be an integer of at least 0; got True"),
        ('balance = "log"', "balance must be one of ['none', 'sqrt']; got 'log'"),
        ("num_leaves = ", "not valid TOML"),
    ],
)
def test_bad_values_are_refused_with_key_expectation_and_value(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_model_config(write(tmp_path, text + "\n"))
    assert expected in str(caught.value) and str(tmp_path / "model.toml") in str(caught.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected a TOML file; got .*nope\.toml"):
        load_model_config(tmp_path / "nope.toml")


def test_train_refuses_a_bad_configuration_before_training(
    small_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nba.cli import app
    from nba.settings import get_settings

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("NBA_MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    get_settings(fresh=True)
    try:
        bad = write(tmp_path, "min_child_samples = 0\n")
        run = CliRunner().invoke(app, ["train", "--data", str(small_world), "--config", str(bad)])
    finally:
        get_settings(fresh=True)
    assert run.exit_code == 2, run.output
    assert "min_child_samples must be an integer of at least 1; got 0" in run.output
    assert not store.exists() and not (tmp_path / "mlruns").exists()
