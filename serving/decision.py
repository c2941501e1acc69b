"""The decision: which actions a member gets, in which order, and why the others did not.

Pure functions of their inputs (profile values, consent verdicts, recent feedback, models,
policy), so a decision can be replayed from its audit record. The order of the gates is
COMPLIANCE.md's: consent per purpose and channel, then eligibility and products already
held, then the contact policy; only the candidates that pass are scored, then arbitrated by
propensity × value × lever.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nba.catalogue import Action, Catalogue
from serving.experiment import CONTROL
from serving.models import ModelSet, ScoringModel

RETURNED, SUPPRESSED = "returned", "suppressed"
CONTROL_GROUP = "CONTROL_GROUP"
"""Internal reason: the member is in the control group, which gets no commercial offers."""
LOWER_PRIORITY = "LOWER_PRIORITY"
"""Internal reason: passed every gate but ranked below ``max_items``."""
NO_MODEL = "NO_MODEL"
"""Internal reason: no servable model for the action (none registered, or refused)."""


@dataclass(frozen=True)
class Policy:
    """Contact policy and arbitration settings (NBA_ settings build it)."""

    max_offers_per_30d: int = 2
    dismiss_cooldown_days: int = 30
    levers: Mapping[str, float] = field(default_factory=dict)

    def lever(self, action_id: str) -> float:
        return float(self.levers.get(action_id, 1.0))


@dataclass(frozen=True)
class Feedback:
    action_id: str
    event: str
    at: dt.datetime


@dataclass
class Candidate:
    action: Action
    status: str = SUPPRESSED
    reason: str | None = None
    score: float | None = None
    lever: float = 1.0
    model: ScoringModel | None = None
    rank: int | None = None

    @property
    def priority(self) -> float | None:
        return None if self.score is None else self.score * self.action.value * self.lever

    def record(self) -> dict[str, Any]:
        """The candidate as the audit log keeps it."""
        return {
            "action_id": self.action.id,
            "kind": self.action.kind,
            "purpose": self.action.purpose,
            "status": self.status,
            "reason": self.reason,
            "score": self.score,
            "value": self.action.value,
            "lever": self.lever,
            "priority": self.priority,
            "model": None if self.model is None else {"name": self.model.name, "version": self.model.version},
            "rank": self.rank,
        }


def consent_reason(action: Action, verdicts: Mapping[str, Any]) -> str | None:
    """The reason consent forbids this action, or None. A health-data offer is still an offer:
    it needs the ``offers`` verdict and its own explicit consent."""
    purposes = ["offers", action.purpose] if action.purpose == "offers_health_data" else [action.purpose]
    for purpose in purposes:
        verdict = verdicts[purpose]
        if not verdict.allowed:
            return str(verdict.reason)
    return None


def holds_reason(action: Action, values: Mapping[str, Any]) -> str | None:
    if action.kind != "offer":
        return None
    if action.id == "health_formula_upgrade":
        return "ALREADY_HOLDS" if values.get("formula_level") == 4 else None
    return "ALREADY_HOLDS" if values.get(f"holds_{action.id}") else None


def eligibility_reason(action: Action, values: Mapping[str, Any]) -> str | None:
    """ALREADY_HOLDS, NOT_ELIGIBLE, or None. Prevention also needs its schedule to be due
    (no dental visit for 12 months...): a check-up done last month is not recommended."""
    held = holds_reason(action, values)
    if held:
        return held
    ok = action.relevant_for(values) if action.kind == "prevention" else action.eligible_for(values)
    return None if ok else "NOT_ELIGIBLE"


@dataclass(frozen=True)
class ContactState:
    """What the contact policy needs from the member's recent feedback."""

    dismissed: frozenset[str]
    offers_shown_30d: int

    @classmethod
    def from_feedback(
        cls, recent: Iterable[Feedback], offer_ids: set[str], now: dt.datetime, policy: Policy
    ) -> ContactState:
        cooldown = now - dt.timedelta(days=policy.dismiss_cooldown_days)
        month = now - dt.timedelta(days=30)
        items = list(recent)
        dismissed = frozenset(i.action_id for i in items if i.event == "dismissed" and i.at >= cooldown)
        shown = sum(1 for i in items if i.event == "shown" and i.at >= month and i.action_id in offer_ids)
        return cls(dismissed, shown)

    def as_dict(self) -> dict[str, Any]:
        return {"dismissed": sorted(self.dismissed), "offers_shown_30d": self.offers_shown_30d}


def contact_reason(action: Action, state: ContactState, policy: Policy) -> str | None:
    """CONTACT_POLICY when the member dismissed this action lately, or has seen enough offers."""
    if action.id in state.dismissed:
        return "CONTACT_POLICY"
    if action.kind == "offer" and state.offers_shown_30d >= policy.max_offers_per_30d:
        return "CONTACT_POLICY"
    return None


def gate(
    catalogue: Catalogue,
    values: Mapping[str, Any],
    verdicts: Mapping[str, Any],
    contact: ContactState,
    models: ModelSet,
    variant: str,
    policy: Policy,
) -> list[Candidate]:
    """Every catalogue action with the first gate it fails, or its model if it passes them all."""
    out = []
    for action in catalogue.actions:
        candidate = Candidate(action, lever=policy.lever(action.id))
        candidate.reason = (
            consent_reason(action, verdicts)
            or (CONTROL_GROUP if variant == CONTROL and action.kind == "offer" else None)
            or eligibility_reason(action, values)
            or contact_reason(action, contact, policy)
        )
        if candidate.reason is None:
            candidate.model = models.for_variant(action.id, variant)
            if candidate.model is None:
                candidate.reason = NO_MODEL
        out.append(candidate)
    return out


def score_and_rank(candidates: list[Candidate], vector: np.ndarray, max_items: int) -> list[Candidate]:
    """Score the candidates that passed the gates and return the top ``max_items`` by priority."""
    open_ = [c for c in candidates if c.reason is None and c.model is not None]
    for candidate in open_:
        candidate.score = candidate.model.score(vector)  # type: ignore[union-attr]
    return rank(open_, max_items)


def rank(open_: list[Candidate], max_items: int) -> list[Candidate]:
    ordered = sorted(open_, key=lambda c: (-(c.priority or 0.0), c.action.id))
    for position, candidate in enumerate(ordered, start=1):
        if position <= max_items:
            candidate.status, candidate.rank = RETURNED, position
        else:
            candidate.reason = LOWER_PRIORITY
    return ordered[:max_items]
