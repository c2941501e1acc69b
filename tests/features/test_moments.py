"""Life-moment detectors against the generator's ground truth, and the derived moments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from features.build import build_profiles
from features.moment_quality import GROUND_TRUTH, DetectorScore, score_detectors


@pytest.fixture(scope="module")
def scores(world_20k: Path) -> dict[str, DetectorScore]:
    # leave out the first months (no history yet to tell a start from a habit) and the last two
    # (claims not yet paid at the extract date)
    found = score_detectors(world_20k, dt.date(2023, 7, 1), dt.date(2025, 10, 31))
    return {s.moment: s for s in found}


@pytest.mark.parametrize("moment", sorted(GROUND_TRUTH))
def test_detector_precision_and_recall(scores: dict[str, DetectorScore], moment: str) -> None:
    score = scores[moment]
    assert score.true_events >= 50, "too few events to judge"
    assert score.precision >= 0.9
    assert score.recall >= 0.9


def test_at_least_twelve_moments_become_features() -> None:
    from features.registry import MOMENTS

    assert len(MOMENTS) >= 12


def test_derived_moments_follow_birthdays(small_world: Path) -> None:
    as_of = dt.date(2025, 6, 1)
    p = build_profiles(small_world, as_of).to_pandas()
    under_40 = p["age"] < 40
    assert p.loc[under_40, "months_since_age_step"].isna().all()
    age = p.loc[~under_40, "age"]
    step = (age // 10 * 10).clip(upper=70)  # the 40th, 50th, 60th or 70th birthday
    years_since = p.loc[~under_40, "months_since_age_step"] / 12
    assert ((years_since - (age - step)).abs() <= 1).all()
    near = p["months_since_retirement_within_3y"].notna()
    assert (p.loc[near, "age"] >= 61).all() and not p.loc[near, "status_retired"].any()
