"""The 20,000-member world looks like France (shared/design/CALIBRATION.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.synthetic import calibration as cal
from features.synthetic.summary import WorldSummary, summarize


@pytest.fixture(scope="module")
def summary(world_20k: Path) -> WorldSummary:
    return summarize(world_20k)


@pytest.mark.parametrize("category", sorted(cal.SPEND_PER_PERSON))
def test_spend_per_person_within_25_percent(summary: WorldSummary, category: str) -> None:
    reference = cal.SPEND_PER_PERSON[category]
    assert summary.spend_per_person[category] == pytest.approx(reference, rel=0.25)


def test_share_of_adults_without_a_dental_visit(summary: WorldSummary) -> None:
    assert 0.45 <= summary.no_dental_visit_share <= 0.65


def test_births_per_thousand_people(summary: WorldSummary) -> None:
    assert 8.0 <= summary.births_per_1000 <= 13.0


def test_retirements_concentrate_between_60_and_67(summary: WorldSummary) -> None:
    ages = np.array(summary.retirement_ages)
    assert ages.size > 100
    assert ((ages >= 60) & (ages <= 67)).mean() >= 0.75
    assert 61.5 <= ages.mean() <= 64.0
    assert (ages < 60).mean() == pytest.approx(cal.RETIREMENT_EARLY_SHARE, abs=0.06)


@pytest.mark.parametrize(
    ("measure", "low", "high"),
    [
        ("breast screening, women 50-74, 2 years", 0.45, 0.80),
        ("colorectal screening, 50-74, 2 years", 0.25, 0.50),
        ("cervical screening, women 25-65, 3 years", 0.40, 0.70),
        ("flu vaccination, 65+, 1 year", 0.44, 0.64),
    ],
)
def test_prevention_take_up_near_published_rates(
    summary: WorldSummary, measure: str, low: float, high: float
) -> None:
    assert low <= summary.prevention_rates[measure] <= high


def test_who_pays(summary: WorldSummary) -> None:
    shares = summary.payer_shares
    assert shares["social security"] == pytest.approx(0.801, abs=0.05)
    assert shares["out of pocket"] == pytest.approx(0.075, abs=0.03)


def test_consent_shares_are_realistic(summary: WorldSummary) -> None:
    c = summary.consent_shares
    blocked = c.get("offers: objected", 0) + c.get("offers: no_other_offers", 0)
    assert 0.05 <= blocked <= 0.3  # a minority objects or refuses other offers
    assert 0.2 <= c["prevention: granted"] <= 0.5  # a minority grants prevention consent
    assert 0.03 <= c["offers_health_data: granted"] < c["prevention: granted"]
    assert c["prevention: withdrawn"] > 0  # some withdraw later


def test_every_life_event_happens(summary: WorldSummary) -> None:
    from nba import vocab

    assert set(summary.life_events_per_year) == set(vocab.LIFE_EVENTS)
