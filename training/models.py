"""One LightGBM binary model per action, with the features its purpose allows.

Trees are kept shallow (at most 7 leaves, depth 5): exact TreeSHAP costs grow with depth
and leaves, and serving explains every returned item with ``pred_contrib``. Many small,
strongly regularised trees (at least 200 rows a leaf, L2 10, 60% of the features a tree,
learning rate 0.03) learn rare labels from a few hundred positives better than fewer larger
ones: on the 20,000-member world they came closer to the oracle for almost every action.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features import registry
from nba import vocab
from nba.catalogue import Action
from nba.errors import ConfigError
from training.metrics import binary_metrics


@dataclass(frozen=True)
class ModelConfig:
    num_leaves: int = 7
    max_depth: int = 5
    learning_rate: float = 0.03
    n_estimators: int = 1500
    early_stopping_rounds: int = 100
    min_child_samples: int = 200
    feature_fraction: float = 0.6
    bagging_fraction: float = 0.8
    lambda_l2: float = 10.0
    balance: str = "none"
    """Class imbalance: 'sqrt' weighs positives by sqrt(negatives/positives), 'none' (the
    default) does not: on rare offers, re-weighted positives overfit and rank worse."""
    seed: int = 0

    def params(self, scale_pos_weight: float) -> dict[str, Any]:
        return {
            "objective": "binary",
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "scale_pos_weight": scale_pos_weight,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 2,
            "verbosity": -1,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_features(action: Action, requested: list[str] | None = None) -> list[str]:
    """The action's features: exactly what its purpose allows, or a subset a user asks for.

    Refuses a feature whose data category the purpose does not allow (COMPLIANCE.md): an
    ``offers`` model never sees a ``health_claims`` feature.
    """
    allowed = registry.allowed_features(action.purpose)
    if requested is None:
        return list(allowed)
    refused = [f for f in requested if f not in allowed]
    if refused:
        details = ", ".join(
            f"{f} ({registry.BY_NAME[f].category if f in registry.BY_NAME else 'not in the registry'})"
            for f in refused
        )
        categories = vocab.PURPOSE_ALLOWED_CATEGORIES[action.purpose]
        raise ConfigError(
            f"action {action.id!r} (purpose {action.purpose!r}) may only use features of categories "
            f"{list(categories)} that are model features; got {details}"
        )
    return list(requested)


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Features as a float matrix (missing values NaN, booleans 0/1), in the given order."""
    return frame[features].astype("float64").to_numpy(na_value=np.nan)


@dataclass
class FittedModel:
    """A booster, its features, and the Platt calibration that turns its margin into a
    probability (training re-weights positives, so raw scores overstate them)."""

    action_id: str
    booster: lgb.Booster
    features: list[str]
    best_iteration: int
    scale_pos_weight: float
    calibration: tuple[float, float] = (1.0, 0.0)

    def margin(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_iteration=self.best_iteration, raw_score=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(-(a * self.margin(x) + b)))

    @property
    def categories(self) -> dict[str, str]:
        return {f: registry.BY_NAME[f].category for f in self.features}


def fit_action(
    train: pd.DataFrame, valid: pd.DataFrame, action: Action, features: list[str], config: ModelConfig
) -> FittedModel:
    """Fit with early stopping on the validation split.

    The validation rows weigh positives as training does, so early stopping watches the loss
    training minimises: unweighted, it would stop after a few trees, as soon as the re-weighted
    scores drift above the unweighted rate."""
    y_train, y_valid = train[f"label_{action.id}"].to_numpy(), valid[f"label_{action.id}"].to_numpy()
    scale = positive_weight(y_train, config.balance)
    dtrain = lgb.Dataset(matrix(train, features), y_train, feature_name=features, free_raw_data=False)
    weight = np.where(y_valid == 1, scale, 1.0)
    dvalid = lgb.Dataset(matrix(valid, features), y_valid, weight=weight, reference=dtrain)
    booster = lgb.train(
        config.params(scale),
        dtrain,
        num_boost_round=config.n_estimators,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    model = FittedModel(action.id, booster, features, best, scale)
    model.calibration = platt(model.margin(matrix(valid, features)), y_valid)
    return model


def positive_weight(y: np.ndarray, balance: str) -> float:
    """Weight of positives: sqrt(negatives/positives) under 'sqrt' balance, else 1."""
    positives = max(int(y.sum()), 1)
    ratio = (len(y) - positives) / positives
    return float(np.sqrt(ratio)) if balance == "sqrt" else 1.0


def platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit p = sigmoid(a * margin + b) on held-out rows (identity when one class is absent)."""
    if not 0 < y.sum() < y.size:
        return (1.0, 0.0)
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
    return (float(fit.coef_[0, 0]), float(fit.intercept_[0]))


def evaluate_model(model: FittedModel, frame: pd.DataFrame) -> dict[str, float]:
    y = frame[f"label_{model.action_id}"].to_numpy()
    return binary_metrics(y, model.predict(matrix(frame, model.features)))
