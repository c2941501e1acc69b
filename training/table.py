"""`nba train-table` and `nba score-table`: the LightGBM pipeline on any table a user brings.

No catalogue and no feature registry: columns are typed from the file itself. Numbers and
booleans are numeric features; strings and categoricals are LightGBM categorical features whose
levels are recorded with the model (a level unseen in training is scored as missing); dates
become days since 1970-01-01 (ISO date strings count as dates); constant, all-missing,
identifier-like and unsupported columns are dropped with a note. The schema (features, kinds,
training dtypes, levels) is logged with the model as ``table_schema.json``, so scoring rebuilds
the exact matrix.

Rows are split 60/20/20 (train, calibration, test), stratified on the label and seeded. On the
training rows, k-fold stratified cross-validation with early stopping picks the number of
trees, then the model is fit on all training rows; a Platt calibration is fit on the
calibration rows; metrics are measured on the test rows. The model is registered as NAME, its
version tagged ``kind=table`` and given the alias ``challenger``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from pandas.api import types

from nba import vocab
from nba.errors import ConfigError, DataError
from training import tracking
from training.metrics import binary_metrics
from training.models import FittedModel, ModelConfig, platt, positive_weight

SUFFIXES = (".parquet", ".csv")
NUMERIC, CATEGORICAL, DATE = "numeric", "categorical", "date"
MAX_LEVELS = 1000
"""A string column with more distinct values is dropped: an identifier or free text."""
MIN_CLASS_ROWS = 20
"""Fewest rows of each class: enough for a stratified split and k-fold cross-validation."""
DEFAULT_EXPERIMENT = "nba-tables"
SCHEMA_FILE = "table_schema.json"
TOP_REASONS = 3
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_EPOCH = pd.Timestamp("1970-01-01")


@dataclass(frozen=True)
class TableSchema:
    """What scoring needs to rebuild the training matrix, column by column."""

    label: str
    id_column: str | None
    features: list[str]
    kinds: dict[str, str]  # feature -> numeric | categorical | date
    dtypes: dict[str, str]  # feature -> its dtype in the training file
    levels: dict[str, list[str]]  # categorical feature -> levels; a value's code is its position
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature

    @property
    def categorical(self) -> list[str]:
        return [f for f in self.features if self.kinds[f] == CATEGORICAL]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TableSchema:
        return cls(**json.loads(text))


@dataclass
class TableTraining:
    name: str
    version: str
    run_id: str
    experiment: str
    schema: TableSchema
    rows: dict[str, int]  # train, valid (calibration), test
    rounds: int
    metrics: dict[str, float]


@dataclass
class TableModel:
    name: str
    version: str
    schema: TableSchema
    fitted: FittedModel


@dataclass
class TableScoring:
    out: Path
    rows: int
    name: str
    version: str
    unseen: dict[str, tuple[int, str]]  # categorical feature -> (rows, examples) of levels never seen


# ---------------------------------------------------------------- reading and checking


def _examples(values: Iterable[Any], n: int = 3) -> str:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
        if len(seen) == n:
            break
    plain = [v.item() if isinstance(v, np.generic) else v for v in seen]
    return ", ".join(repr(int(v) if isinstance(v, float) and v.is_integer() else v) for v in plain)


def _rows(mask: np.ndarray | pd.Series, n: int = 3) -> str:
    return ", ".join(str(i) for i in np.flatnonzero(np.asarray(mask))[:n])


def _columns(names: Iterable[str], n: int = 12) -> str:
    names = list(names)
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(repr(c) for c in names[:n]) + more


def check_suffix(path: Path, what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{what} {path} must end in one of {list(SUFFIXES)}; got {suffix or 'no suffix'!r}")
    return suffix


def read_table(path: Path, strings: Sequence[str] = ()) -> pd.DataFrame:
    """A Parquet or CSV file (by suffix); ``strings`` are CSV columns read as text, not numbers."""
    path = Path(path)
    suffix = check_suffix(path, "table")
    if not path.is_file():
        raise DataError(f"table {path} does not exist or is not a file")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=dict.fromkeys(strings, "str"), low_memory=False)
    except (OSError, ValueError) as exc:  # pyarrow and the CSV parser raise subclasses of these
        raise DataError(f"cannot read {path} as {suffix[1:]}: {exc}") from None


def label_vector(frame: pd.DataFrame, label: str, source: str) -> np.ndarray:
    """The label as 0/1 integers, or an error naming what is wrong with it."""
    if label not in frame.columns:
        raise DataError(f"{source} has no label column {label!r}; its columns are {_columns(frame.columns)}")
    values = frame[label]
    where = f"label column {label!r} in {source}"
    if not (types.is_numeric_dtype(values.dtype) or types.infer_dtype(values, skipna=True) == "boolean"):
        raise DataError(
            f"{where} must hold the numbers 0 and 1 (or booleans); got {values.dtype} values such as "
            f"{_examples(values.dropna())}"
        )
    numbers = values.astype("float64")
    bad = ~numbers.isin([0.0, 1.0]) & numbers.notna()
    if bad.any():
        raise DataError(
            f"{where} must hold only 0 and 1; got values {_examples(np.sort(values.dropna().unique()), 5)} "
            f"({int(bad.sum()):,} rows are neither 0 nor 1, e.g. rows {_rows(bad)}: "
            f"{_examples(values[bad])})"
        )
    if numbers.isna().any():
        missing = numbers.isna()
        raise DataError(
            f"{where} must be 0 or 1 on every row; {int(missing.sum()):,} of {len(values):,} rows have "
            f"no value (rows {_rows(missing)}, counting from 0)"
        )
    y = numbers.to_numpy().astype(np.int64)
    counts = np.bincount(y, minlength=2)
    if counts.min() == 0:
        raise DataError(
            f"{where} has a single class: all {y.size:,} rows are {int(y[0])}; training needs rows of "
            f"both 0 and 1"
        )
    if counts.min() < MIN_CLASS_ROWS:
        cls = int(counts.argmin())
        raise DataError(
            f"{where} has only {counts.min()} rows with label {cls}; at least {MIN_CLASS_ROWS} of each "
            f"class are needed for a stratified split and cross-validation"
        )
    return y


def check_name(name: str, training: bool = True) -> None:
    """A name MLflow and its filters accept; training may not take an action model's name."""
    if not _NAME.match(name):
        raise ConfigError(
            f"model name must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or "
            f"digit; got {name!r}"
        )
    if training and name in {tracking.model_name(a) for a in vocab.ACTION_IDS}:
        raise ConfigError(f"model name {name!r} belongs to an action model of nba train; choose another")


# ---------------------------------------------------------------- typing the columns


def _iso_dates(values: pd.Series) -> bool:
    return bool(values.astype(str).str.fullmatch(_ISO_DATE).all())


def _kind(series: pd.Series) -> tuple[str | None, str]:
    """(kind, '') for a usable column, (None, why) for one to drop."""
    present = series.dropna()
    if present.empty:
        return None, "every value is missing"
    dtype = series.dtype
    if types.is_bool_dtype(dtype) or types.is_numeric_dtype(dtype):
        kind: str | None = NUMERIC
    elif types.is_datetime64_any_dtype(dtype):
        kind = DATE
    else:
        inferred = types.infer_dtype(present, skipna=True)
        kind = {"boolean": NUMERIC, "integer": NUMERIC, "floating": NUMERIC, "decimal": NUMERIC,
                "mixed-integer-float": NUMERIC, "date": DATE, "datetime": DATE, "datetime64": DATE,
                "string": CATEGORICAL, "categorical": CATEGORICAL}.get(inferred)  # fmt: skip
        if kind is None:
            return None, f"unsupported type {dtype} ({inferred} values such as {_examples(present)})"
        if kind == CATEGORICAL and _iso_dates(present.head(100)) and _iso_dates(present):
            kind = DATE
    distinct = present.astype(str).nunique() if kind == CATEGORICAL else present.nunique()
    if distinct < 2:
        return None, f"every non-missing value is {_examples(present, 1)}"
    if kind == CATEGORICAL and distinct > MAX_LEVELS:
        return None, f"{distinct:,} distinct strings (at most {MAX_LEVELS} kept): an identifier or free text?"
    if kind == CATEGORICAL and distinct == len(present):
        return None, f"identifier-like: all {distinct:,} strings are distinct"
    return kind, ""


def infer_schema(frame: pd.DataFrame, label: str, id_column: str | None = None) -> TableSchema:
    """Type every column but the label and the id; refuse a table with no usable feature."""
    features, kinds, dtypes, levels, dropped = [], {}, {}, {}, {}
    for column in frame.columns:
        if column in (label, id_column):
            continue
        kind, why = _kind(frame[column])
        if kind is None:
            dropped[str(column)] = why
            continue
        features.append(str(column))
        kinds[str(column)], dtypes[str(column)] = kind, str(frame[column].dtype)
        if kind == CATEGORICAL:
            levels[str(column)] = sorted(frame[column].dropna().astype(str).unique().tolist())
    if not features:
        reasons = "; ".join(f"{c!r}: {why}" for c, why in dropped.items()) or "it has no other column"
        keys = f"label {label!r}" + (f" and id {id_column!r}" if id_column else "")
        raise DataError(
            f"no usable feature column besides the {keys}: expected numeric, boolean, string or date "
            f"columns with at least two distinct values; {reasons}"
        )
    return TableSchema(label, id_column, features, kinds, dtypes, levels, dropped)


# ---------------------------------------------------------------- the matrix


def _bad_values(series: pd.Series, parsed: pd.Series, column: str, expected: str, source: str) -> None:
    bad = series.notna().to_numpy() & parsed.isna().to_numpy()
    if bad.any():
        raise DataError(
            f"column {column!r} in {source} must hold {expected}, as in training; {int(bad.sum()):,} rows "
            f"do not (e.g. rows {_rows(bad)}: {_examples(series[bad])})"
        )


def _numbers(series: pd.Series, column: str, source: str) -> np.ndarray:
    if types.is_bool_dtype(series.dtype) or types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if types.infer_dtype(series, skipna=True) == "boolean":
        series = series.map({True: 1.0, False: 0.0})
    parsed = pd.to_numeric(series, errors="coerce")
    _bad_values(series, parsed, column, "numbers or booleans", source)
    return parsed.to_numpy(dtype="float64", na_value=np.nan)


def _days(series: pd.Series, column: str, source: str) -> np.ndarray:
    parsed = (
        series
        if types.is_datetime64_any_dtype(series.dtype)
        else pd.to_datetime(series, errors="coerce", format="ISO8601")
    )
    _bad_values(series, parsed, column, "dates (YYYY-MM-DD)", source)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return ((parsed - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype="float64", na_value=np.nan)


def _codes(series: pd.Series, levels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the training levels (NaN when missing or unseen) and where a level was unseen."""
    present = series.notna().to_numpy()
    text = np.where(present, series.astype(object).astype(str), "")
    codes = pd.Index(levels).get_indexer(pd.Index(text))
    codes[~present] = -1  # a level may be the empty string
    unseen = (codes == -1) & present
    return np.where(codes >= 0, codes, np.nan).astype("float64"), unseen


def encode(
    frame: pd.DataFrame, schema: TableSchema, source: str
) -> tuple[np.ndarray, dict[str, tuple[int, str]]]:
    """The float matrix of ``schema.features`` and, per categorical feature, the rows and examples
    of levels training never saw (scored as missing)."""
    missing = [f for f in schema.features if f not in frame.columns]
    if missing:
        raise DataError(
            f"{source} lacks {len(missing)} of the {len(schema.features)} feature columns the model "
            f"needs: {_columns(missing, 30)}"
        )
    x = np.empty((len(frame), len(schema.features)), dtype="float64")
    unseen: dict[str, tuple[int, str]] = {}
    for j, f in enumerate(schema.features):
        kind = schema.kinds[f]
        if kind == NUMERIC:
            x[:, j] = _numbers(frame[f], f, source)
        elif kind == DATE:
            x[:, j] = _days(frame[f], f, source)
        else:
            x[:, j], new = _codes(frame[f], schema.levels[f])
            if new.any():
                unseen[f] = (int(new.sum()), _examples(frame[f][new]))
    return x, unseen


# ---------------------------------------------------------------- splitting and fitting


def stratified_split(
    y: np.ndarray, rng: np.random.Generator, valid: float = 0.2, test: float = 0.2
) -> np.ndarray:
    """'train', 'valid' or 'test' per row, in the same shares within each class."""
    part = np.full(y.size, "train", dtype="<U5")
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == cls))
        n_test, n_valid = round(test * rows.size), round(valid * rows.size)
        part[rows[:n_test]] = "test"
        part[rows[n_test : n_test + n_valid]] = "valid"
    return part


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, held-out) index pairs, each class spread evenly over the folds."""
    fold = np.empty(y.size, dtype=np.int64)
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == cls))
        fold[rows] = np.arange(rows.size) % k
    return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]


def _lgb_names(features: list[str]) -> list[str]:
    """Names LightGBM accepts (no JSON punctuation, no spaces), unique."""
    names: list[str] = []
    for i, f in enumerate(features):
        clean = re.sub(r"[^0-9A-Za-z_]", "_", f)
        names.append(clean if clean not in names else f"{clean}__{i}")
    return names


def fit_table(
    name: str, x: np.ndarray, y: np.ndarray, part: np.ndarray, schema: TableSchema, config: ModelConfig,
    folds: list[tuple[np.ndarray, np.ndarray]], threads: int = 2,
) -> FittedModel:  # fmt: skip
    """Cross-validated early stopping picks the rounds; fit on all training rows; Platt on 'valid'."""
    train, valid = part == "train", part == "valid"
    scale = positive_weight(y[train], config.balance)
    params = config.params(scale) | {"num_threads": threads, "metric": "auc"}
    categorical = [j for j, f in enumerate(schema.features) if schema.kinds[f] == CATEGORICAL]

    def dataset() -> lgb.Dataset:
        return lgb.Dataset(x[train], y[train], feature_name=_lgb_names(schema.features),
                           categorical_feature=categorical, free_raw_data=False)  # fmt: skip

    stop = lgb.early_stopping(config.early_stopping_rounds, verbose=False)
    history = lgb.cv(params, dataset(), num_boost_round=config.n_estimators, folds=folds, callbacks=[stop])
    rounds = len(cast(list[float], history["valid auc-mean"]))
    booster = lgb.train(params, dataset(), num_boost_round=rounds)
    model = FittedModel(name, booster, schema.features, rounds, scale)
    model.calibration = platt(model.margin(x[valid]), y[valid])
    return model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def prepare(path: Path, label: str, id_column: str | None) -> tuple[TableSchema, np.ndarray, np.ndarray]:
    """Read, check, type and encode a training table: its schema, its matrix and its 0/1 label."""
    frame, source = read_table(path), str(path)
    y = label_vector(frame, label, source)
    if id_column is not None and id_column not in frame.columns:
        raise DataError(f"{source} has no id column {id_column!r}; its columns are {_columns(frame.columns)}")
    schema = infer_schema(frame, label, id_column)
    return schema, encode(frame, schema, source)[0], y


def train_table(
    path: Path,
    label: str,
    name: str,
    id_column: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str = "sqlite:///mlruns/mlflow.db",
    artifact_root: Path = Path("mlruns"),
    config: ModelConfig | None = None,
    folds: int = 5,
    threads: int = 2,
) -> TableTraining:
    """Train on ``path``, log a run to ``experiment`` and register the model as ``name``.

    ``threads`` are LightGBM's; on small tables or a busy machine, 1 is often faster.
    """
    config = config or ModelConfig()
    check_name(name)
    if not 2 <= folds <= 20 or threads < 1:
        raise ConfigError(f"folds must be between 2 and 20 and threads at least 1; got {folds} and {threads}")
    if id_column is not None and id_column == label:
        raise ConfigError(f"the id column and the label must differ; both are {label!r}")
    client = tracking.configure(tracking_uri)
    _check_not_action_model(client, name)
    schema, x, y = prepare(path, label, id_column)
    rng = np.random.default_rng(config.seed)
    part = stratified_split(y, rng)
    folded = stratified_folds(y[part == "train"], folds, rng)
    model = fit_table(name, x, y, part, schema, config, folded, threads)
    test = part == "test"
    metrics = binary_metrics(y[test], model.predict(x[test]))
    rows = {p: int((part == p).sum()) for p in ("train", "valid", "test")}
    experiment_id = tracking.ensure_experiment(client, experiment, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.log_params({f"model.{k}": v for k, v in config.as_dict().items()})
        mlflow.log_params({"label": label, "id_column": id_column, "folds": folds, "num_threads": threads,
                           "n_features": len(schema.features), "n_dropped": len(schema.dropped),
                           "best_iteration": model.best_iteration,
                           "scale_pos_weight": round(model.scale_pos_weight, 4)}
                          | {f"rows_{p}": n for p, n in rows.items()})  # fmt: skip
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.set_tags({"kind": "table", "source": str(path), "source_sha256": _sha256(Path(path))})
        with tempfile.TemporaryDirectory() as tmp:
            _log_artifacts(Path(tmp), model, schema, x[test], y[test], metrics)
        tags = {"kind": "table", "label": label, "id_column": id_column or "",
                "calibration": json.dumps(list(model.calibration)),
                "best_iteration": str(model.best_iteration), "n_features": str(len(schema.features)),
                "schema": SCHEMA_FILE}  # fmt: skip
        version = tracking.register(client, name, model.booster, tags)
        client.set_registered_model_tag(name, "kind", "table")
    return TableTraining(
        name, version, run.info.run_id, experiment, schema, rows, model.best_iteration, metrics
    )


def _check_not_action_model(client: MlflowClient, name: str) -> None:
    existing = client.search_registered_models(filter_string=f"name = '{name}'")
    if existing and existing[0].tags.get("kind") != "table":
        raise ConfigError(
            f"model name {name!r} is already registered by something other than nba train-table"
        )


def _log_artifacts(
    out: Path,
    model: FittedModel,
    schema: TableSchema,
    x: np.ndarray,
    y: np.ndarray,
    metrics: dict[str, float],
) -> None:
    """The schema scoring needs, SHAP importance and lift on the test rows, a short model card."""
    (out / SCHEMA_FILE).write_text(schema.to_json())
    contrib = np.asarray(model.booster.predict(x, num_iteration=model.best_iteration, pred_contrib=True))
    kinds = [schema.kinds[f] for f in schema.features]
    mean_abs = np.abs(contrib[:, :-1]).mean(axis=0)
    importance = pd.DataFrame({"feature": schema.features, "kind": kinds, "mean_abs_shap": mean_abs})
    importance = importance.sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    importance.to_csv(out / "shap_importance.csv", index=False)
    tracking.lift_curve(y, model.predict(x)).to_csv(out / "lift_curve.csv", index=False)
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    dropped = "\n".join(f"- `{c}`: {why}" for c, why in schema.dropped.items()) or "- none"
    (out / "model_card.md").write_text(
        f"# Model card: {model.action_id}\n\n- **Label**: `{schema.label}` (0/1)\n"
        f"- **Features**: {len(schema.features)} ({len(schema.categorical)} categorical)\n"
        f"- **Model**: LightGBM, {model.best_iteration} trees (rounds chosen by cross-validation), "
        f"Platt calibration a={model.calibration[0]:.3f}, b={model.calibration[1]:.3f}\n\n"
        f"## Test metrics\n\n| metric | value |\n| --- | --- |\n{rows}\n\n## Columns dropped\n\n{dropped}\n"
    )
    mlflow.log_artifacts(str(out))


# ---------------------------------------------------------------- scoring


def load_table_model(client: MlflowClient, name: str, version: str | None = None) -> TableModel:
    """A version (number or alias; default the latest) of a model registered by train_table."""
    check_name(name, training=False)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        tables = sorted(m.name for m in client.search_registered_models() if m.tags.get("kind") == "table")
        raise ConfigError(
            f"no model named {name!r} in the registry; table models registered there: "
            f"{', '.join(tables) or 'none'} (train one with nba train-table)"
        )
    found = _version(client, name, version)
    tags = found.tags
    if tags.get("kind") != "table":
        raise ConfigError(f"model {name!r} v{found.version} was not trained by nba train-table")
    with tempfile.TemporaryDirectory() as tmp:
        schema = TableSchema.from_json(
            Path(client.download_artifacts(str(found.run_id), SCHEMA_FILE, tmp)).read_text()
        )
    booster = mlflow.lightgbm.load_model(f"models:/{name}/{found.version}")
    a, b = json.loads(tags["calibration"])
    fitted = FittedModel(name, booster, schema.features, int(tags["best_iteration"]), 1.0, (a, b))
    return TableModel(name, str(found.version), schema, fitted)


def _version(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    """A version by number or alias; the highest number when ``version`` is None."""
    numbers = sorted(int(v.version) for v in client.search_model_versions(filter_string=f"name = '{name}'"))
    wanted = version or str(numbers[-1])
    try:
        if wanted.isdigit():
            return client.get_model_version(name, wanted)
        return client.get_model_version_by_alias(name, wanted)
    except mlflow.exceptions.MlflowException:
        aliases = sorted(client.get_registered_model(name).aliases)
        raise ConfigError(
            f"model {name!r} has no version or alias {wanted!r}; versions: {', '.join(map(str, numbers))}; "
            f"aliases: {', '.join(aliases) or 'none'}"
        ) from None


def _shown(value: Any) -> str | None:
    """A feature's value as text in the reasons (the file's own value, not its encoding)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.6g}"
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.strftime("%Y-%m-%d")
    return str(value.item() if isinstance(value, np.generic) else value)


def reasons(model: TableModel, x: np.ndarray, frame: pd.DataFrame, top: int = TOP_REASONS) -> pd.DataFrame:
    """The ``top`` strongest exact TreeSHAP contributions per row, in calibrated log-odds.

    A contribution of exactly zero is no reason: its three columns are left empty.
    """
    fitted, features = model.fitted, np.array(model.schema.features, dtype=object)
    a = fitted.calibration[0]
    raw = fitted.booster.predict(x, num_iteration=fitted.best_iteration, pred_contrib=True)
    contrib = a * np.asarray(raw)[:, :-1]
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")
    rows, out = np.arange(len(x)), {}
    for k in range(top):
        j = order[:, k] if k < len(features) else np.zeros(len(x), dtype=np.int64)
        c = contrib[rows, j] if k < len(features) else np.zeros(len(x))
        keep = c != 0
        shown = np.empty(len(x), dtype=object)
        for f in np.unique(j[keep]):
            at = np.flatnonzero(keep & (j == f))
            shown[at] = [_shown(v) for v in frame[features[f]].iloc[at]]
        names = features[j]
        names[~keep] = None
        out[f"reason_{k + 1}_feature"] = names
        out[f"reason_{k + 1}_value"] = shown
        out[f"reason_{k + 1}_contribution"] = np.where(keep, c, np.nan)
    return pd.DataFrame(out, index=frame.index)


def score_frame(
    model: TableModel, frame: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, dict[str, tuple[int, str]]]:
    """Calibrated score and reasons per row, keyed by the id column (or the row number)."""
    schema = model.schema
    needed = [*([schema.id_column] if schema.id_column else []), *schema.features]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source} lacks {len(missing)} columns model {model.name!r} v{model.version} needs: "
            f"{_columns(missing, 30)}"
        )
    x, unseen = encode(frame, schema, source)
    key = frame[schema.id_column] if schema.id_column else pd.Series(np.arange(len(frame)), name="row")
    scores = pd.DataFrame({str(key.name): key.to_numpy(), "score": model.fitted.predict(x)})
    return pd.concat([scores, reasons(model, x, frame).reset_index(drop=True)], axis=1), unseen


def write_atomic(frame: pd.DataFrame, out: Path) -> None:
    """Parquet or CSV by suffix, through a temporary file renamed into place: a failure leaves nothing."""
    out = Path(out)
    suffix = check_suffix(out, "output")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def score_table(
    path: Path, name: str, out: Path, version: str | None = None,
    tracking_uri: str = "sqlite:///mlruns/mlflow.db",
) -> TableScoring:  # fmt: skip
    """Score every row of ``path`` with the registered model ``name`` and write ``out``."""
    check_suffix(out, "output")
    check_suffix(path, "table")
    model = load_table_model(tracking.configure(tracking_uri), name, version)
    frame = read_table(path, strings=model.schema.categorical)
    scored, unseen = score_frame(model, frame, str(path))
    write_atomic(scored, out)
    return TableScoring(Path(out), len(scored), name, model.version, unseen)
