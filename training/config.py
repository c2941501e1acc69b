"""Model hyper-parameters from a TOML file, for `nba train --config FILE`.

The file holds any of ``ModelConfig``'s fields at the top level (or under ``[model]``);
those it leaves out keep their defaults. For example, a challenger with larger trees::

    num_leaves = 15
    learning_rate = 0.1
    balance = "sqrt"

Every value is checked before anything is trained: an unknown key, a value of the wrong
type or out of range is refused with the key, what was expected and what was received.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nba.errors import ConfigError
from training.models import ModelConfig

Check = tuple[str, Callable[[Any], bool]]

BALANCES = ("none", "sqrt")
RULES: dict[str, Check] = {
    # serving explains with exact TreeSHAP, whose cost grows with leaves and depth
    "num_leaves": ("an integer from 2 to 63", lambda v: 2 <= v <= 63),
    "max_depth": ("an integer from 1 to 8", lambda v: 1 <= v <= 8),
    "learning_rate": ("a number in (0, 1]", lambda v: 0 < v <= 1),
    "n_estimators": ("an integer from 1 to 20000", lambda v: 1 <= v <= 20_000),
    "early_stopping_rounds": ("an integer from 1 to 5000", lambda v: 1 <= v <= 5000),
    "min_child_samples": ("an integer of at least 1", lambda v: v >= 1),
    "feature_fraction": ("a number in (0, 1]", lambda v: 0 < v <= 1),
    "bagging_fraction": ("a number in (0, 1]", lambda v: 0 < v <= 1),
    "lambda_l2": ("a number of at least 0", lambda v: v >= 0),
    "balance": (f"one of {list(BALANCES)}", lambda v: v in BALANCES),
    "seed": ("an integer of at least 0", lambda v: v >= 0),
}  # fmt: skip


def model_config_from(values: dict[str, Any], source: str = "configuration") -> ModelConfig:
    """A ``ModelConfig`` from a mapping of field names; ``source`` names it in errors."""
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; expected keys among {sorted(fields)}")
    for key, value in values.items():
        default = getattr(ModelConfig(), key)
        meaning, ok = RULES.get(key, (type(default).__name__, lambda v: True))
        if not _same_kind(value, default) or not ok(value):
            raise ConfigError(f"{source}: {key} must be {meaning}; got {value!r}")
    typed: dict[str, Any] = {
        k: float(v) if isinstance(getattr(ModelConfig(), k), float) else v for k, v in values.items()
    }
    return dataclasses.replace(ModelConfig(), **typed)


def _same_kind(value: Any, default: Any) -> bool:
    """Integers where the default is an integer, numbers where it is a float (never a bool)."""
    if isinstance(value, bool):
        return False
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def load_model_config(path: Path) -> ModelConfig:
    """Read a TOML file of ``ModelConfig`` fields (top level, or the ``[model]`` table)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: expected a TOML file; got {str(path)!r}, which is not a file")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
    if set(values) == {"model"} and isinstance(values["model"], dict):
        values = values["model"]
    return model_config_from(values, source=f"--config {path}")
