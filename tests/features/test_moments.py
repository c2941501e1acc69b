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


def test_profiles_date_each_moment_as_the_detectors_do(small_world: Path) -> None:
    # the profiles find the claim moments in their one pass over the claims (profiles.claim_features)
    # and the others in record_events; detect(), which the precision and recall are scored on, must
    # date every moment of every member the same way
    from features import build
    from features import moments as mo

    as_of = dt.date(2025, 6, 1)
    profiles = build_profiles(small_world, as_of).to_pandas().set_index("member_id")
    with build.connect("duckdb") as con:
        src = build.load_sources(con, small_world)
        events = mo.detect(src, as_of, build.history_start(src, as_of))
        latest = con.to_pyarrow(events.group_by(["member_id", "moment"]).aggregate(date=events.date.max()))
    found = latest.to_pandas()
    found = found[found["member_id"].isin(profiles.index)]
    assert set(mo.CLAIM_MOMENTS) <= set(found["moment"])
    for moment, rows in found.groupby("moment"):
        months = rows["date"].map(lambda day: int((as_of - day).days / 30.4375))
        column = profiles.loc[rows["member_id"], f"months_since_{moment}"]
        assert column.tolist() == months.tolist(), moment
        assert profiles[f"months_since_{moment}"].notna().sum() == len(rows), moment
