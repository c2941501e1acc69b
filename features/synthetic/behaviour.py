"""How simulated people behave: the hidden propensities behind every action.

Each action has a monthly hazard that depends on the person's situation
(age, household, care gaps, life moments, contract, engagement) plus a small
hidden trait. The ground truth published for evaluation is the 90-day
probability implied by these hazards, in the absence of any campaign. A
campaign exposure multiplies the month's hazard (``EXPOSURE_LIFT``).
"""

from __future__ import annotations

import numpy as np

from features.synthetic.records import NO_DAY
from features.synthetic.state import MARITAL, STATUS, WORKING, YEAR, Block
from nba import vocab

MONTH = 30.44
FAR = 999.0
FLU_SEASON = {10: 1.0, 11: 1.2, 12: 0.6, 1: 0.3}
PREVENTION_CHECK_STEPS = ((18, 25), (45, 50), (60, 65), (70, 75))
EXPOSURE_LIFT = {a: (2.5 if p == "prevention" else 4.0) for a, p in vocab.ACTION_PURPOSES.items()}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def months_since(day: int, dates: np.ndarray) -> np.ndarray:
    return np.where(dates == NO_DAY, FAR, (day - dates.astype(np.float64)) / MONTH)


def season_weight(month: int) -> float:
    return FLU_SEASON.get(int(month), 0.0)


def prevention_step_start(age: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """Day the current 'bilan prévention' age step began, or NO_DAY outside the steps."""
    start = np.full(age.shape, NO_DAY, dtype=np.int64)
    for low, high in PREVENTION_CHECK_STEPS:
        inside = (age >= low) & (age < high)
        start = np.where(inside, birth + int(low * YEAR), start)
    return start


def prevention_hazards(b: Block, day: int, month: int) -> dict[str, np.ndarray]:
    """Monthly hazard of each prevention action for every covered person, shape (n, SLOTS)."""
    age = b.age(day)
    female = b.sex == 0
    z = b.diligence
    formula = b.formula[:, None].astype(np.float64)
    online = (b.online != NO_DAY)[:, None] & (b.online <= day)[:, None]
    chronic = b.last["chronic"] != NO_DAY
    gd = months_since(day, b.last["dental"])
    gd2 = months_since(day, b.last["dental_prev"])
    ge = months_since(day, b.last["eye"])
    gm = months_since(day, b.last["mammo"])
    gc = months_since(day, b.last["colo"])
    gcv = months_since(day, b.last["cerv"])
    gh = months_since(day, b.last["hearing"])
    ghosp = months_since(day, b.last["hosp"])
    h: dict[str, np.ndarray] = {}
    h["dental_checkup"] = sigmoid(
        -3.3 + 0.55 * z + 0.55 * ((gd >= 6) & (gd < 15)) + 0.35 * (gd2 < 30) - 0.35 * (gd > 30)
        + 0.12 * (formula - 2.5) + 0.45 * ((age >= 3) & (age < 25)) - 0.01 * np.maximum(age - 50, 0)
        + 0.2 * online - 2.0 * (age < 3) - 1.5 * (gd < 3)
    )  # fmt: skip
    h["eye_exam"] = sigmoid(
        -4.2 + 0.35 * z + 0.8 * (ge >= 24) + 0.4 * (ge >= 12) + 0.6 * (age >= 40) + 0.3 * (age >= 60)
        + 0.3 * ((age >= 5) & (age < 18)) - 1.2 * (ge < 6)
    )  # fmt: skip
    h["breast_screening"] = _screening(z, gm, 21.0, -4.9, 1.9) * (female & (age >= 50) & (age < 75))
    h["colorectal_screening"] = _screening(z, gc, 21.0, -6.1, 1.7) * ((age >= 50) & (age < 75))
    interval = np.where(age < 30, 36.0, 60.0)
    h["cervical_screening"] = _screening(z, gcv, interval - 3.0, -4.5, 1.9) * (
        female & (age >= 25) & (age < 66)
    )
    h["flu_vaccination"] = flu_hazard(b, day, month, age, z, chronic)
    h["hearing_check"] = sigmoid(
        np.where(age >= 60, -5.1 + 0.04 * (age - 60), -7.5) + 0.6 * (gh >= 36) + 0.3 * z
        - 2.0 * (gh < 12)
    )  # fmt: skip
    step = prevention_step_start(age, b.birth.astype(np.int64))
    due = (step != NO_DAY) & ((b.last["prev_check"] == NO_DAY) | (b.last["prev_check"] < step))
    h["prevention_checkup"] = due * sigmoid(-4.4 + 0.5 * z + 0.5 * online + 0.3 * (formula - 2.5))
    recent_stay = (ghosp <= 1.5) & ((b.last["support"] == NO_DAY) | (b.last["support"] < b.last["hosp"]))
    h["post_hospital_support"] = recent_stay * sigmoid(-1.3 + 0.7 * (age >= 70) + 0.3 * z)
    return {a: np.where(b.exists, v, 0.0) for a, v in h.items()}


def _screening(
    z: np.ndarray, gap: np.ndarray, due_after: np.ndarray | float, base: float, due_effect: float
) -> np.ndarray:
    due = gap >= due_after
    habit = gap < 40
    return sigmoid(base + 0.9 * z + due_effect * due + 0.9 * (due & habit) - 2.0 * (gap < 15))


def flu_season_of(day_year: int, month: int) -> int:
    """Flu seasons are named by the year they start (October)."""
    return day_year if month >= 10 else day_year - 1


def flu_hazard(
    b: Block, day: int, month: int, age: np.ndarray, z: np.ndarray, chronic: np.ndarray
) -> np.ndarray:
    year = int(np.datetime64(day, "D").astype("datetime64[Y]").astype(np.int64)) + 1970
    season = flu_season_of(year, month)
    eligible = (age >= 65) | chronic
    last_season = b.flu_season == season - 1
    logit = -2.2 + 1.0 * z + 1.6 * last_season + 0.4 * (age >= 75) + 0.3 * chronic
    logit = np.where(eligible, logit, logit - 2.5)
    done = b.flu_season == season
    # the season weight scales the hazard's log-survival, so it stays a probability
    return (1.0 - (1.0 - sigmoid(logit)) ** season_weight(month)) * ~done


def offer_hazards(b: Block, day: int, oop12: np.ndarray) -> dict[str, np.ndarray]:
    """Monthly hazard of taking each offer for every member, shape (n,).

    Offers depend only on what an ``offers`` model may see (demographic, household,
    contract, engagement), except the health-data offer, which needs claims.
    """
    age = b.age(day)[:, 0]
    status = b.status
    working = np.isin(status, WORKING)
    indiv = b.contract == 0
    online = (b.online != NO_DAY) & (b.online <= day)
    u = b.responsive + 0.35 * online
    spouse = b.exists[:, 1]
    children = b.exists[:, 2:]
    child_age = np.where(children, b.age(day)[:, 2:], np.inf)
    youngest = child_age.min(axis=1)
    m_birth, m_marriage = (
        months_since(day, b.moment["birth"]),
        months_since(day, b.moment["marriage"]),
    )
    m_move, m_sep = months_since(day, b.moment["move"]), months_since(day, b.moment["separation"])
    m_18, m_widow = (
        months_since(day, b.moment["child18"]),
        months_since(day, b.moment["spouse_death"]),
    )
    holds = b.holding != NO_DAY
    h: dict[str, np.ndarray] = {}
    h["prevoyance"] = sigmoid(
        -6.1 + 1.9 * (m_birth <= 6) + 1.1 * (m_marriage <= 6) + 0.9 * (working & indiv)
        + 0.6 * (status == STATUS["self_employed"]) + 0.6 * (youngest < 6)
        - 0.05 * np.maximum(age - 45, 0) + u
    ) * (age < 65)  # fmt: skip
    to_retire = b.retire_age - age
    h["retirement_savings"] = sigmoid(
        -6.5 + 1.3 * ((age >= 45) & (to_retire > 0)) + 0.5 * (to_retire < 8) * (to_retire > 0)
        + 0.6 * (status == STATUS["self_employed"]) + 0.3 * (b.formula - 2)
        - 0.8 * (status == STATUS["unemployed"]) + u
    ) * (status != STATUS["retired"])  # fmt: skip
    h["home_insurance"] = sigmoid(
        -6.9 + 2.5 * (m_move <= 3) + 1.0 * ((m_marriage <= 6) | (m_sep <= 6)) + 0.5 * (age < 35)
        - 0.4 * (age > 70) + u
    )  # fmt: skip
    h["auto_insurance"] = sigmoid(
        -7.1 + 2.3 * (m_18 <= 6) + 1.0 * (m_move <= 3) + 0.3 * children.any(axis=1)
        - 0.6 * (age > 75) + u
    )  # fmt: skip
    retired = status == STATUS["retired"]
    h["long_term_care"] = sigmoid(
        -7.2 + 1.3 * ((age >= 55) & (age <= 75)) + 0.5 * retired + 0.4 * spouse
        + 0.8 * (b.marital == MARITAL["widowed"]) + u
    )  # fmt: skip
    h["funeral_cover"] = sigmoid(-7.6 + 1.5 * (age >= 60) + 0.4 * (age >= 75) + 2.3 * (m_widow <= 12) + u)
    h["health_formula_upgrade"] = sigmoid(
        -6.3 + 0.0028 * np.minimum(oop12, 1200.0) + 0.5 * (b.formula == 1) + 0.3 * indiv + u
    ) * (b.formula < 4)  # fmt: skip
    for j, product in enumerate(vocab.PRODUCTS):
        h[product] = h[product] * ~holds[:, j]
    return h


def ninety_day(monthly: list[np.ndarray]) -> np.ndarray:
    """Probability of at least one event over consecutive months with these hazards."""
    survive = np.ones_like(monthly[0])
    for h in monthly:
        survive = survive * (1.0 - h)
    return 1.0 - survive
