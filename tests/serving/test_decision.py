"""The decision's pure parts on hand-made inputs: gates, variants, explanation filters."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from features import registry
from nba.catalogue import default_catalogue
from nba.errors import InvalidField
from serving import decision, explain
from serving.consent import Verdict
from serving.experiment import Split
from serving.models import ModelSet

CATALOGUE = default_catalogue()
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ALLOWED = Verdict(True, None, ())


def verdicts(**denied: str) -> dict[str, Verdict]:
    out = dict.fromkeys(("prevention", "offers", "offers_health_data"), ALLOWED)
    return out | {p: Verdict(False, reason, (1,)) for p, reason in denied.items()}


def test_health_data_offer_needs_both_offers_and_health_data_consent() -> None:
    upgrade = CATALOGUE["health_formula_upgrade"]
    assert decision.consent_reason(upgrade, verdicts()) is None
    assert decision.consent_reason(upgrade, verdicts(offers="NO_OTHER_OFFERS")) == "NO_OTHER_OFFERS"
    missing = verdicts(offers_health_data="HEALTH_DATA_NOT_CONSENTED")
    assert decision.consent_reason(upgrade, missing) == "HEALTH_DATA_NOT_CONSENTED"
    assert decision.consent_reason(CATALOGUE["prevoyance"], missing) is None


def test_holdings_and_due_rules() -> None:
    prevoyance, dental = CATALOGUE["prevoyance"], CATALOGUE["dental_checkup"]
    assert decision.eligibility_reason(prevoyance, {"age": 40, "holds_prevoyance": True}) == "ALREADY_HOLDS"
    assert decision.eligibility_reason(prevoyance, {"age": 40, "holds_prevoyance": False}) is None
    assert decision.eligibility_reason(prevoyance, {"age": 70, "holds_prevoyance": False}) == "NOT_ELIGIBLE"
    assert decision.eligibility_reason(dental, {"age": 40, "months_since_dental": 3}) == "NOT_ELIGIBLE"
    assert decision.eligibility_reason(dental, {"age": 40, "months_since_dental": 14}) is None
    assert decision.eligibility_reason(dental, {"age": 40, "months_since_dental": None}) is None
    upgrade = CATALOGUE["health_formula_upgrade"]
    assert decision.eligibility_reason(upgrade, {"formula_level": 4}) == "ALREADY_HOLDS"


def test_contact_policy_counts_offers_shown_and_dismissals() -> None:
    policy = decision.Policy(max_offers_per_30d=2, dismiss_cooldown_days=30)
    offers = {a.id for a in CATALOGUE.actions if a.kind == "offer"}
    recent = [
        decision.Feedback("home_insurance", "shown", NOW - dt.timedelta(days=3)),
        decision.Feedback("auto_insurance", "shown", NOW - dt.timedelta(days=40)),
        decision.Feedback("eye_exam", "dismissed", NOW - dt.timedelta(days=10)),
    ]
    state = decision.ContactState.from_feedback(recent, offers, NOW, policy)
    assert state.offers_shown_30d == 1 and state.dismissed == {"eye_exam"}
    assert decision.contact_reason(CATALOGUE["eye_exam"], state, policy) == "CONTACT_POLICY"
    assert decision.contact_reason(CATALOGUE["prevoyance"], state, policy) is None
    recent.append(decision.Feedback("prevoyance", "shown", NOW - dt.timedelta(days=1)))
    full = decision.ContactState.from_feedback(recent, offers, NOW, policy)
    assert decision.contact_reason(CATALOGUE["retirement_savings"], full, policy) == "CONTACT_POLICY"
    assert decision.contact_reason(CATALOGUE["dental_checkup"], full, policy) is None


def test_variant_is_sticky_and_follows_the_split() -> None:
    split = Split(challenger_share=0.3, control_share=0.2, salt="s")
    variants = [split.variant(m) for m in range(5000)]
    assert variants == [split.variant(m) for m in range(5000)]
    assert 0.17 < variants.count("control") / 5000 < 0.23
    assert 0.27 < variants.count("challenger") / 5000 < 0.33
    assert {Split(0.0, 0.0, "s").variant(m) for m in range(100)} == {"champion"}
    assert {Split(1.0, 0.0, "s").variant(m) for m in range(100)} == {"challenger"}
    assert [Split(0.3, 0.2, "t").variant(m) for m in range(5000)] != variants
    grown = Split(challenger_share=0.3, control_share=0.25, salt="s")
    assert all(grown.variant(m) == "control" for m in range(5000) if variants[m] == "control")


@pytest.mark.parametrize(
    ("challenger", "control", "field"), [(0.5, 0.6, "control_share"), (-0.1, 0.0, "challenger_share")]
)
def test_split_refuses_impossible_shares(challenger: float, control: float, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        Split(challenger, control, "s")
    assert caught.value.field == field


def test_control_group_gets_no_offers() -> None:
    values = {"age": 45, "holds_prevoyance": False, "months_since_dental": 20, "formula_level": 2}
    state = decision.ContactState(frozenset(), 0)
    models = ModelSet({}, {}, {})
    for variant, offer_reason in (("control", "CONTROL_GROUP"), ("champion", decision.NO_MODEL)):
        gated = {c.action.id: c.reason for c in decision.gate(CATALOGUE, values, verdicts(), state, models,
                                                              variant, decision.Policy())}  # fmt: skip
        assert gated["prevoyance"] == offer_reason
        assert gated["dental_checkup"] == decision.NO_MODEL  # prevention is not held back


def test_ranking_is_by_propensity_times_value_times_lever() -> None:
    a, b = CATALOGUE["prevoyance"], CATALOGUE["dental_checkup"]  # values 4.0 and 1.0
    first = decision.Candidate(a, score=0.1, lever=1.0)
    second = decision.Candidate(b, score=0.3, lever=1.0)
    assert [c.action.id for c in decision.rank([second, first], 1)] == ["prevoyance"]
    assert second.reason == decision.LOWER_PRIORITY and first.rank == 1
    boosted = decision.Candidate(b, score=0.3, lever=2.0)
    assert [c.action.id for c in decision.rank([decision.Candidate(a, score=0.1), boosted], 1)] == [
        "dental_checkup"
    ]


@pytest.mark.parametrize("action_id", [a.id for a in CATALOGUE.actions if a.kind == "offer"])
def test_offer_text_never_uses_a_health_feature(action_id: str) -> None:
    action = CATALOGUE[action_id]
    health = [f for f in registry.FEATURES if f.category == "health_claims"]
    assert not any(explain.member_may_read(f, action) for f in health)


def test_prevention_text_uses_only_prevention_facts_among_health_features() -> None:
    action = CATALOGUE["dental_checkup"]
    readable = {
        f.name
        for f in registry.FEATURES
        if f.category == "health_claims" and explain.member_may_read(f, action)
    }
    assert readable == set(explain.PREVENTION_FACTS)
    for condition in (
        "chronic_treatment",
        "hospital_stays_12m",
        "months_since_hospitalisation",
        "pharmacy_count_12m",
    ):
        assert not explain.member_may_read(registry.BY_NAME[condition], action)


def test_factors_keep_the_strongest_positive_readable_contributions() -> None:
    action = CATALOGUE["dental_checkup"]
    features = ("months_since_dental", "chronic_treatment", "age", "tenure_months")
    contributions = np.array([0.5, 0.9, -0.2, 0.1])
    values = {"months_since_dental": 19, "chronic_treatment": True, "age": 52, "tenure_months": 30}
    chosen = explain.factors(action, features, contributions, values, "fr")
    assert [f.feature for f in chosen] == ["months_since_dental", "tenure_months"]
    assert chosen[0].sentence == "Votre dernière visite chez le dentiste remonte à 19 mois"
    assert explain.text(action, chosen) == (
        "Votre dernière visite chez le dentiste remonte à 19 mois. Vous êtes adhérent depuis 30 mois."
    )
    english = explain.factors(action, features, contributions, values, "en")
    assert english[0].sentence == "Your last dental visit was 19 months ago"
    assert explain.text(action, [], "fr") == action.description["fr"]


def test_a_false_fact_is_never_stated() -> None:
    # a model may find "not retired" a reason for a car insurance offer; the phrase of
    # status_retired says "Vous êtes retraité", so it must not explain the offer to someone
    # who is not
    action = CATALOGUE["auto_insurance"]
    features = ("status_retired", "collective_contract", "age")
    contributions = np.array([0.9, 0.5, 0.1])
    values = {"status_retired": False, "collective_contract": True, "age": 34}
    chosen = explain.factors(action, features, contributions, values, "fr")
    assert [f.feature for f in chosen] == ["collective_contract", "age"]
    assert explain.text(action, chosen) == "Vous êtes couvert par un contrat d'entreprise. Vous avez 34 ans."
