"""Replay a logged decision: the recorded inputs through the recorded model versions.

ACPR's fourth explanation level (replication): the audit record holds the feature values,
the model name and version of every scored candidate, the value and lever used; replay loads
those versions from the registry, scores the same values again, ranks them the same way and
says whether the scores and the ranking are identical.

The record keeps the inputs of the explanations, not every feature's contribution: those are
derived from the same inputs by :func:`contributions` (exact TreeSHAP, as deterministic as the
scores) when compliance reads a decision, which keeps each record about five times smaller
than with the contributions written out (records written before kept them; they are used as
written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nba.catalogue import Catalogue
from serving import decision
from serving.models import ModelSet, feature_vector


@dataclass
class ReplayReport:
    request_id: str
    identical: bool
    scores: list[dict[str, Any]] = field(default_factory=list)
    recorded_ranking: list[str] = field(default_factory=list)
    replayed_ranking: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "identical": self.identical,
            "scores": self.scores,
            "recorded_ranking": self.recorded_ranking,
            "replayed_ranking": self.replayed_ranking,
        }


def contributions(record: dict[str, Any], models: ModelSet) -> dict[str, dict[str, float]]:
    """Every feature's contribution to each returned action of ``record`` (an audit record), by
    action: from the recorded contributions when the record holds them, otherwise recomputed
    from the recorded feature values with the recorded model version.

    Raises what loading a model version raises when a version cannot be read.
    """
    explanations = record.get("explanations") or {}
    versions = {c["action_id"]: c["model"]["version"] for c in record.get("candidates", []) if c.get("model")}
    vector = None
    out: dict[str, dict[str, float]] = {}
    for action_id in record.get("returned", []):
        written = (explanations.get(action_id) or {}).get("contributions")
        if written is not None:
            out[action_id] = dict(written)
            continue
        if vector is None:
            vector = feature_vector(record.get("features") or {})
        model = models.version(action_id, versions[action_id])
        out[action_id] = dict(zip(model.features, model.contributions(vector).tolist(), strict=True))
    return out


def replay(record: dict[str, Any], models: ModelSet, catalogue: Catalogue) -> ReplayReport:
    """Recompute the scores and the ranking of ``record`` (an audit record)."""
    vector = feature_vector(record["features"])
    open_: list[decision.Candidate] = []
    scores = []
    for item in record["candidates"]:
        if item["score"] is None or item["model"] is None:
            continue
        model = models.version(item["action_id"], item["model"]["version"])
        candidate = decision.Candidate(catalogue[item["action_id"]], lever=item["lever"], model=model)
        candidate.score = model.score(vector)
        scores.append({
            "action_id": item["action_id"],
            "model_version": item["model"]["version"],
            "recorded": item["score"],
            "replayed": candidate.score,
            "identical": candidate.score == item["score"] and candidate.action.value == item["value"],
        })  # fmt: skip
        open_.append(candidate)
    replayed = [c.action.id for c in decision.rank(open_, record["max_items"])]
    recorded = list(record["returned"])
    identical = all(s["identical"] for s in scores) and replayed == recorded
    return ReplayReport(record["request_id"], identical, scores, recorded, replayed)
