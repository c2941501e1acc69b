"""`nba evaluate`: each action's model against baselines and the ground-truth oracle.

Baselines, on the same test rows (eligible members at the test as-of dates):
- popularity: the action's positive rate in training (one score for everyone);
- rules: the catalogue's "relevant when" rule, ties broken by popularity;
- logistic regression on the same features as the model (imputed, standardised).
The oracle is the generator's true probability of each label's event in the 90 days
(ground_truth/, evaluation only; docs/synthetic-world.md). Per action, metrics are computed
within each test as-of date and averaged over the dates. Across actions, MAP@3 and NDCG@3
rank each member's eligible actions by each scorer.

The share of the oracle's gain, (AUC_model - 0.5) / (AUC_oracle - 0.5), comes with a 90%
bootstrap interval over the test rows: on a 20,000-member world a rare offer has a few hundred
positives per test date, and the interval says how far the test sample alone moves the share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nba.catalogue import Catalogue, default_catalogue
from training import tracking
from training.dataset import AS_OF_DATES, build_training_frame, plan_for
from training.metrics import binary_metrics, gain_share_interval
from training.models import matrix
from training.promote import registered_scores, version_by_alias

SCORERS = ("model", "popularity", "rules", "logistic", "oracle")
COUNTS = ("positives", "rows")


@dataclass
class Evaluation:
    per_action: pd.DataFrame  # one row per action and scorer
    ranking: pd.DataFrame  # MAP@3 and NDCG@3 per scorer
    shares: pd.DataFrame  # per action: the share of the oracle's gain and its 90% interval


def _champion_scores(
    client: MlflowClient, action_id: str, frame: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    name = tracking.model_name(action_id)
    version = version_by_alias(client, name, tracking.CHAMPION) or version_by_alias(
        client, name, tracking.CHALLENGER
    )
    if version is None:
        raise LookupError(f"no champion or challenger registered for {name}: run nba train first")
    return registered_scores(client, version, frame), json.loads(version.tags["features"])  # type: ignore[attr-defined]


def _oracle(data: Path, frame: pd.DataFrame, action_id: str) -> np.ndarray:
    truth = duckdb.execute(
        f"select member_id, month as as_of, {action_id} p from "
        f"read_parquet('{data}/ground_truth/propensities.parquet')"
    ).df()
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    keyed = frame[["member_id", "as_of"]].merge(truth, on=["member_id", "as_of"], how="left")
    return keyed["p"].fillna(0.0).to_numpy()


def _logistic(train: pd.DataFrame, test: pd.DataFrame, action_id: str, features: list[str]) -> np.ndarray:
    y = train[f"label_{action_id}"].to_numpy()
    if not 0 < y.sum() < y.size:
        return np.full(len(test), y.mean() if y.size else 0.0)
    model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                          LogisticRegression(max_iter=300, C=0.5))  # fmt: skip
    model.fit(matrix(train, features), y)
    return model.predict_proba(matrix(test, features))[:, 1]


def score_actions(
    data: Path,
    frame: pd.DataFrame,
    catalogue: Catalogue,
    client,
) -> dict[str, dict[str, np.ndarray]]:
    """Every scorer's score for every test row (NaN where the action is not eligible)."""
    test, train = frame[frame["split"] == "test"], frame[frame["split"] == "train"]
    scores: dict[str, dict[str, np.ndarray]] = {s: {} for s in SCORERS}
    for action in catalogue.actions:
        eligible = test[f"eligible_{action.id}"].to_numpy()
        rows = test[eligible]
        popularity = train.loc[train[f"eligible_{action.id}"], f"label_{action.id}"].mean()
        model, features = _champion_scores(client, action.id, rows)
        per = {
            "model": model,
            "popularity": np.full(len(rows), popularity),
            "rules": rows[f"relevant_{action.id}"].to_numpy(float) + popularity,
            "logistic": _logistic(train[train[f"eligible_{action.id}"]], rows, action.id, features),
            "oracle": _oracle(data, rows, action.id),
        }
        for scorer, values in per.items():
            full = np.full(len(test), np.nan)
            full[eligible] = values
            scores[scorer][action.id] = full
    return scores


def metrics_by_date(y: np.ndarray, score: np.ndarray, dates: np.ndarray) -> dict[str, float]:
    """Each metric within every as-of date, then averaged over the dates (counts are summed).

    Members are only ever ranked against each other on one date, so pooling dates would
    reward a scorer for knowing how the dates differ (the flu season, say) rather than for
    ranking members."""
    per_date = [binary_metrics(y[dates == d], score[dates == d]) for d in np.unique(dates)]
    if not per_date:
        return binary_metrics(y, score)
    out = {}
    for name in per_date[0]:
        values = np.array([m[name] for m in per_date])
        if name in COUNTS:
            out[name] = float(values.sum())
        else:
            out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def ranking_metrics(
    test: pd.DataFrame, scores: dict[str, np.ndarray], ids: tuple[str, ...], k: int = 3
) -> tuple[float, float, int]:
    """MAP@k and NDCG@k over members with at least one positive among eligible actions."""
    s = np.column_stack([scores[a] for a in ids])
    y = np.column_stack([test[f"label_{a}"].to_numpy() for a in ids]) * ~np.isnan(s)
    keep = y.sum(axis=1) > 0
    s, y = np.where(np.isnan(s), -np.inf, s)[keep], y[keep]
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(y, order, axis=1)
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (precision * hits).sum(axis=1) / np.minimum(y.sum(axis=1), k)
    discount = 1 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discount[: min(int(n), k)].sum() for n in y.sum(axis=1)])
    ndcg = (hits * discount).sum(axis=1) / ideal
    return float(ap.mean()), float(ndcg.mean()), int(keep.sum())


def evaluate(data: Path, tracking_uri: str, experiment: str = "nba", months: int = AS_OF_DATES) -> Evaluation:
    catalogue = default_catalogue()
    plan = plan_for(Path(data), months=months)
    frame = build_training_frame(Path(data), catalogue, plan)
    client = tracking.configure(tracking_uri)
    scores = score_actions(Path(data), frame, catalogue, client)
    test = frame[frame["split"] == "test"]
    rows, shares = [], []
    for action in catalogue.actions:
        eligible = test[f"eligible_{action.id}"].to_numpy()
        y = test.loc[eligible, f"label_{action.id}"].to_numpy()
        dates = test.loc[eligible, "as_of"].to_numpy()
        auc = {}
        for scorer in SCORERS:
            metrics = metrics_by_date(y, scores[scorer][action.id][eligible], dates)
            rows.append({"action": action.id, "scorer": scorer, **metrics})
            auc[scorer] = metrics["roc_auc"]
        share = (auc["model"] - 0.5) / (auc["oracle"] - 0.5) if auc["oracle"] > 0.5 else float("nan")
        low, high = gain_share_interval(
            y, scores["model"][action.id][eligible], scores["oracle"][action.id][eligible], dates
        )
        shares.append({"action": action.id, "share": share, "low": low, "high": high})
    per_action = pd.DataFrame(rows)
    share_table = pd.DataFrame(shares)
    ranked = [(s, *ranking_metrics(test, scores[s], catalogue.ids)) for s in SCORERS]
    ranking = pd.DataFrame(ranked, columns=["scorer", "map_3", "ndcg_3", "members"])
    _log(client, experiment, per_action, ranking, share_table)
    return Evaluation(per_action, ranking, share_table)


def _log(
    client: MlflowClient,
    experiment: str,
    per_action: pd.DataFrame,
    ranking: pd.DataFrame,
    shares: pd.DataFrame,
) -> None:
    experiment_id = tracking.ensure_experiment(client, experiment, Path("mlruns"))
    with mlflow.start_run(experiment_id=experiment_id, run_name="evaluate"):
        for row in per_action.itertuples():
            for metric in ("roc_auc", "lift_10"):
                value = getattr(row, metric)
                if value == value:
                    mlflow.log_metric(f"{row.action}.{row.scorer}.{metric}", float(value))
        for record in shares.to_dict("records"):
            for name in ("share", "low", "high"):
                value = float(record[name])
                if value == value:
                    mlflow.log_metric(f"{record['action']}.model.gain_{name}", value)
        for row in ranking.itertuples():
            mlflow.log_metric(f"map_3.{row.scorer}", float(row.map_3))  # type: ignore[arg-type]
            mlflow.log_metric(f"ndcg_3.{row.scorer}", float(row.ndcg_3))  # type: ignore[arg-type]
        mlflow.log_text(per_action.to_csv(index=False), "evaluation_per_action.csv")
        mlflow.log_text(ranking.to_csv(index=False), "evaluation_ranking.csv")
        mlflow.log_text(shares.to_csv(index=False), "evaluation_gain_share.csv")
