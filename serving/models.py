"""The registered models serving scores with: loaded from the MLflow registry by alias.

Each registered version carries the tags training wrote (features, their data categories,
the Platt calibration, the best iteration, the purpose). Serving trusts none of it blindly:
before a model may score, its recorded features are checked again against the purpose of
its action (COMPLIANCE.md), and a model that fails is refused, not served.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import weakref
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


class SingleRow:
    """LightGBM's single-row entry point (``LGBM_BoosterPredictForMatSingleRowFast``), set up once
    for one booster, prediction type and number of trees.

    ``Booster.predict`` builds a predictor and checks its input on every call: 43 µs for one
    row of these models against 11 µs here, with identical results (checked in the tests). The
    booster serializes single-row predictions under its own lock; the GIL is released while it
    runs. The setup is freed with the object.
    """

    RAW_SCORE, CONTRIB = 1, 3  # C_API_PREDICT_RAW_SCORE, C_API_PREDICT_CONTRIB
    FLOAT64 = 1  # C_API_DTYPE_FLOAT64

    def __init__(self, booster: lgb.Booster, predict_type: int, num_iteration: int, ncol: int) -> None:
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._booster = booster  # the setup points into it
        self._ncol = ncol
        self._width = ncol + 1 if predict_type == self.CONTRIB else 1
        self._call = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._check = _safe_call
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle, ctypes.c_int(predict_type), ctypes.c_int(0),
                ctypes.c_int(num_iteration), ctypes.c_int(self.FLOAT64), ctypes.c_int32(ncol),
                _c_str("num_threads=1"), ctypes.byref(handle),
            )
        )  # fmt: skip
        self._handle = handle
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)

    def __call__(self, row: np.ndarray) -> np.ndarray:
        """The prediction for one row of ``ncol`` float64 values (contiguous)."""
        if row.shape != (self._ncol,) or row.dtype != np.float64 or not row.flags.c_contiguous:
            raise ValueError(
                f"expected a contiguous float64 row of {self._ncol} values, got {row.shape} {row.dtype}"
            )
        out = np.empty(self._width)
        length = ctypes.c_int64(0)
        self._check(
            self._call(
                self._handle, row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(length),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )  # fmt: skip
        return out


@dataclass(frozen=True)
class ScoringModel:
    """One registered model version, ready to score a feature vector.

    One row at a time on one thread: OpenMP threads cost far more than they save on a single
    row, and the service already runs requests in parallel (serving.service also sets
    OMP_NUM_THREADS=1, which LightGBM's TreeSHAP path needs). Rows go through
    :class:`SingleRow`, set up when the model is made."""

    action_id: str
    version: str
    alias: str
    booster: lgb.Booster
    features: tuple[str, ...]
    calibration: tuple[float, float]
    best_iteration: int
    purpose: str
    columns: np.ndarray = field(repr=False)
    _raw: SingleRow = field(init=False, repr=False, compare=False)
    _contrib: SingleRow = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ncol = len(self.features)
        object.__setattr__(
            self, "_raw", SingleRow(self.booster, SingleRow.RAW_SCORE, self.best_iteration, ncol)
        )
        object.__setattr__(
            self, "_contrib", SingleRow(self.booster, SingleRow.CONTRIB, self.best_iteration, ncol)
        )

    @property
    def name(self) -> str:
        return model_name(self.action_id)

    def score(self, vector: np.ndarray) -> float:
        """Calibrated probability for one member (vector in MODEL_FEATURES order)."""
        margin = float(self._raw(vector[self.columns])[0])
        a, b = self.calibration
        return float(1.0 / (1.0 + np.exp(-(a * margin + b))))  # as training calibrates

    def contributions(self, vector: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP contributions of each feature on the calibrated logit scale."""
        return self._contrib(vector[self.columns])[:-1] * self.calibration[0]


def feature_vector(values: Mapping[str, Any]) -> np.ndarray:
    """A profile's model features as floats (missing → NaN, booleans 0/1)."""
    return np.array([values.get(name) for name in MODEL_FEATURES], dtype=np.float64)  # None → NaN


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
