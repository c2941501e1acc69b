"""Plain-language explanations: the strongest positive TreeSHAP contributions, in words.

Member-facing text follows COMPLIANCE.md: it never states or implies a health condition,
and an offer's text never mentions health or care at all. So the sentences come only from
features whose registry phrase is meant for members, and for prevention from the few care
facts a member expects to hear (when they last saw the dentist, had an eye exam...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from features import registry
from nba.catalogue import Action

TOP_FACTORS = 3
MIN_CONTRIBUTION = 1e-6
PREVENTION_FACTS = frozenset(
    {f"months_since_{name}" for name, *_ in registry.PREVENTION}
    | {"dental_visits_24m", "months_since_dental_claim", "months_since_optical_claim"}
    | {"months_since_hearing_claim"}
)
"""The only ``health_claims`` features a member may read, and only about prevention."""


@dataclass(frozen=True)
class Factor:
    feature: str
    label: str
    value: Any
    contribution: float
    sentence: str


def member_may_read(feature: registry.Feature, action: Action) -> bool:
    """Whether a feature's phrase may appear in this action's member-facing text."""
    if feature.phrase_fr == "—":
        return False
    name = feature.name
    if name.startswith(("exposures_", "responses_")) and not name.startswith(
        (f"exposures_{action.id}_", f"responses_{action.id}_")
    ):
        return False  # a response to another action says nothing about this one
    if feature.category == "health_claims":
        return action.kind == "prevention" and name in PREVENTION_FACTS
    return True


def _readable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else (int(value) if value.is_integer() else round(value, 2))
    return value


def factors(
    action: Action,
    features: tuple[str, ...],
    contributions: np.ndarray,
    values: dict[str, Any],
    language: str = "fr",
    top: int = TOP_FACTORS,
) -> list[Factor]:
    """The ``top`` strongest positive contributions a member may read, one sentence each."""
    out: list[Factor] = []
    sentences: set[str] = set()
    for i in np.argsort(-contributions, kind="stable"):
        contribution = float(contributions[i])
        if contribution <= MIN_CONTRIBUTION or len(out) == top:
            break
        feature = registry.BY_NAME[features[i]]
        value = _readable(values.get(feature.name))
        if value is None or not member_may_read(feature, action):
            continue
        if feature.type == "bool" and not value:
            continue  # the phrase states the fact ("Vous êtes retraité"): false of this member
        sentence = feature.sentence(value, language)
        if sentence in sentences:
            continue
        sentences.add(sentence)
        label = feature.label_fr if language == "fr" else feature.label_en
        out.append(Factor(feature.name, label, value, round(contribution, 6), sentence))
    return out


def text(action: Action, chosen: list[Factor], language: str = "fr") -> str:
    """The member-facing explanation: the factors' sentences, or the action's description."""
    if not chosen:
        return action.description[language]
    return ". ".join(f.sentence for f in chosen) + "."


AUTOMATED_NOTICE = {
    "fr": (
        "Ces suggestions sont calculées automatiquement à partir de votre contrat et de vos "
        "préférences. Vous pouvez vous y opposer ou retirer votre consentement à tout moment dans "
        "vos préférences de confidentialité."
    ),
    "en": (
        "These suggestions are computed automatically from your contract and your preferences. "
        "You can object or withdraw your consent at any time in your privacy settings."
    ),
}
