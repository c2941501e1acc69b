"""The registered models serving scores with: loaded from the MLflow registry by alias.

Each registered version carries the tags training wrote (features, their data categories,
the Platt calibration, the best iteration, the purpose). Serving trusts none of it blindly:
before a model may score, its recorded features are checked again against the purpose of
its action (COMPLIANCE.md), and a model that fails is refused, not served.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features import registry
from nba import vocab
from nba.catalogue import Action, Catalogue
from nba.errors import ConfigError, NbaError

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_FEATURES: tuple[str, ...] = tuple(f.name for f in registry.FEATURES if f.model)
"""The order of the feature vector built once per request; each model picks its columns."""
_POSITION = {name: i for i, name in enumerate(MODEL_FEATURES)}


class ModelsUnavailableError(NbaError):
    """The registry or a model could not be read: the service must not answer without models."""


def model_name(action_id: str) -> str:
    return f"nba-{action_id}"


@dataclass(frozen=True)
class ScoringModel:
    """One registered model version, ready to score a feature vector.

    One row at a time on one thread: OpenMP threads cost far more than they save on a single
    row, and the service already runs requests in parallel (serving.service also sets
    OMP_NUM_THREADS=1, which LightGBM's TreeSHAP path needs)."""

    action_id: str
    version: str
    alias: str
    booster: lgb.Booster
    features: tuple[str, ...]
    calibration: tuple[float, float]
    best_iteration: int
    purpose: str
    columns: np.ndarray = field(repr=False)

    @property
    def name(self) -> str:
        return model_name(self.action_id)

    def rows(self, vector: np.ndarray) -> np.ndarray:
        return vector[self.columns].reshape(1, -1)

    def score(self, vector: np.ndarray) -> float:
        """Calibrated probability for one member (vector in MODEL_FEATURES order)."""
        margin = self.booster.predict(
            self.rows(vector), num_iteration=self.best_iteration, raw_score=True, num_threads=1
        )
        a, b = self.calibration
        return float(1.0 / (1.0 + np.exp(-(a * float(margin[0]) + b))))

    def contributions(self, vector: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP contributions of each feature on the calibrated logit scale."""
        contrib = self.booster.predict(
            self.rows(vector), num_iteration=self.best_iteration, pred_contrib=True
        )
        return np.asarray(contrib)[0, :-1] * self.calibration[0]


def feature_vector(values: Mapping[str, Any]) -> np.ndarray:
    """A profile's model features as floats (missing → NaN, booleans 0/1)."""
    out = np.full(len(MODEL_FEATURES), np.nan)
    for i, name in enumerate(MODEL_FEATURES):
        value = values.get(name)
        if value is not None:
            out[i] = float(value)
    return out


def check_governance(action: Action, features: list[str], recorded_categories: list[str] | None) -> None:
    """Refuse a model whose features its action's purpose does not allow (COMPLIANCE.md)."""
    allowed = set(vocab.PURPOSE_ALLOWED_CATEGORIES[action.purpose])
    unknown = [f for f in features if f not in _POSITION]
    if unknown:
        raise ConfigError(
            f"model {model_name(action.id)} uses features the registry does not declare as model "
            f"features: {unknown[:3]}"
        )
    used = {registry.BY_NAME[f].category for f in features}
    if recorded_categories is not None:
        used |= set(recorded_categories)
    forbidden = sorted(used - allowed)
    if forbidden:
        raise ConfigError(
            f"model {model_name(action.id)} uses data categories {forbidden} that purpose "
            f"{action.purpose!r} does not allow (allowed: {sorted(allowed)}); it is refused"
        )


def _tag(tags: Mapping[str, str], key: str, name: str) -> str:
    if key not in tags:
        raise ModelsUnavailableError(f"model {name}: registered version has no {key!r} tag; retrain it")
    return tags[key]


def load_version(client: Any, action: Action, version: Any, alias: str) -> ScoringModel:
    """Load one registered version and check it against its action's purpose."""
    import mlflow

    name = model_name(action.id)
    tags = dict(version.tags)
    features = json.loads(_tag(tags, "features", name))
    categories = json.loads(tags["feature_categories"]) if "feature_categories" in tags else None
    if tags.get("purpose", action.purpose) != action.purpose:
        raise ConfigError(
            f"model {name} version {version.version} was trained for purpose {tags['purpose']!r}; "
            f"the catalogue binds {action.id} to {action.purpose!r}"
        )
    check_governance(action, features, categories)
    a, b = json.loads(_tag(tags, "calibration", name))
    booster = mlflow.lightgbm.load_model(f"models:/{name}/{version.version}")
    return ScoringModel(
        action_id=action.id,
        version=str(version.version),
        alias=alias,
        booster=booster,
        features=tuple(features),
        calibration=(float(a), float(b)),
        best_iteration=int(_tag(tags, "best_iteration", name)),
        purpose=action.purpose,
        columns=np.array([_POSITION[f] for f in features], dtype=np.intp),
    )


@dataclass
class ModelSet:
    """Champion (and challenger, where one differs) per action, plus versions loaded on demand."""

    champion: dict[str, ScoringModel]
    challenger: dict[str, ScoringModel]
    refused: dict[str, str]
    client: Any = field(repr=False, default=None)
    catalogue: Catalogue | None = field(repr=False, default=None)
    _versions: dict[tuple[str, str], ScoringModel] = field(default_factory=dict, repr=False)

    def for_variant(self, action_id: str, variant: str) -> ScoringModel | None:
        if variant == CHALLENGER and action_id in self.challenger:  # control: the champions
            return self.challenger[action_id]
        return self.champion.get(action_id)

    def version(self, action_id: str, version: str) -> ScoringModel:
        """A specific registered version (replay); cached once loaded."""
        for model in (self.champion.get(action_id), self.challenger.get(action_id)):
            if model is not None and model.version == version:
                return model
        key = (action_id, version)
        if key not in self._versions:
            assert self.client is not None and self.catalogue is not None
            record = self.client.get_model_version(model_name(action_id), version)
            self._versions[key] = load_version(self.client, self.catalogue[action_id], record, "replay")
        return self._versions[key]

    @property
    def versions(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for alias, models in ((CHAMPION, self.champion), (CHALLENGER, self.challenger)):
            for action_id, model in models.items():
                out.setdefault(action_id, {})[alias] = model.version
        return out


def mlflow_client(tracking_uri: str) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    import mlflow
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise ModelsUnavailableError(
                f"the MLflow registry {tracking_uri} does not exist; run `nba train` first"
            )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _by_alias(client: Any, name: str, alias: str) -> Any | None:
    import mlflow

    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def load_models(tracking_uri: str, catalogue: Catalogue) -> ModelSet:
    """Champion and challenger of every action. Raises ModelsUnavailableError when the registry cannot
    be read or no action has a champion; a model refused by governance is left out and named."""
    try:
        client = mlflow_client(tracking_uri)
        champion: dict[str, ScoringModel] = {}
        challenger: dict[str, ScoringModel] = {}
        refused: dict[str, str] = {}
        for action in catalogue.actions:
            for alias, target in ((CHAMPION, champion), (CHALLENGER, challenger)):
                version = _by_alias(client, model_name(action.id), alias)
                if version is None:
                    continue
                if (
                    alias == CHALLENGER
                    and action.id in champion
                    and champion[action.id].version == str(version.version)
                ):
                    continue  # the challenger is the champion: nothing to compare
                try:
                    target[action.id] = load_version(client, action, version, alias)
                except ConfigError as exc:
                    log.error("model refused: %s", exc)
                    refused[f"{action.id}@{alias}"] = str(exc)
    except ModelsUnavailableError:
        raise
    except Exception as exc:  # the registry's own errors are many; all mean "cannot serve"
        raise ModelsUnavailableError(f"cannot read the model registry {tracking_uri}: {exc}") from exc
    if not champion:
        raise ModelsUnavailableError(
            f"no action has a champion model in {tracking_uri}; run `nba train` then `nba promote`"
        )
    return ModelSet(champion, challenger, refused, client=client, catalogue=catalogue)
