"""How simulated people behave: the hidden propensities behind every action.

Each action has a monthly hazard that depends on the person's situation
(age, household, care gaps, life moments, contract, engagement) plus a small
hidden trait. A campaign exposure raises the month's hazard h to
1 - (1 - h) ** ``EXPOSURE_LIFT``. The ground truth published for evaluation,
the probability of each label's event in the next 90 days, is built from these
hazards in ``truth``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.synthetic.records import NO_DAY
from features.synthetic.state import MARITAL, STATUS, WORKING, YEAR, Block
from nba import vocab

MONTH = 30.44
FAR = 999.0
FLU_SEASON = {10: 1.0, 11: 1.2, 12: 0.6, 1: 0.3}
PREVENTION_CHECK_STEPS = ((18, 25), (45, 50), (60, 65), (70, 75))
ALL = slice(None)
DILIGENCE_EFFECT = 0.5
"""Weight of the hidden diligence trait (standard normal per person) in every prevention
hazard; the coefficients below are per unit of this scaled trait. At full weight the trait,
which no claim shows, kept models 0.1 to 0.25 of the oracle's gain away on the screenings
(20,000 members): more hidden heterogeneity than the habits a claims history reveals. At
half weight the take-up rates stay within CALIBRATION.md and the oracle's AUC between 0.66
and 0.83 (docs/synthetic-world.md)."""
HABIT_MONTHS = 30.0
"""A screening done less than this many months ago marks a regular screener: the habit shows
in the claims of an extract of three years or so (the hazards never depend on older history)."""
SUPPORT_MONTHS = (1.0, 3.5)
"""Post-hospital support is taken up between these many months after a stay: it is proposed
once the stay's bill has reached the insurer."""
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


def prevention_hazards(b: Block, day: int, month: int, cols: slice = ALL) -> dict[str, np.ndarray]:
    """Monthly hazard of each prevention action for every covered person, shape (n, SLOTS);
    ``cols`` restricts it to some slots (the ground truth needs the subscriber's only)."""
    age = b.age(day)[:, cols]
    female = b.sex[:, cols] == 0
    z = DILIGENCE_EFFECT * b.diligence[:, cols]
    last = {f: v[:, cols] for f, v in b.last.items()}
    formula = b.formula[:, None].astype(np.float64)
    online = (b.online != NO_DAY)[:, None] & (b.online <= day)[:, None]
    chronic = last["chronic"] != NO_DAY
    gd = months_since(day, last["dental"])
    gd2 = months_since(day, last["dental_prev"])
    ge = months_since(day, last["eye"])
    gm = months_since(day, last["mammo"])
    gc = months_since(day, last["colo"])
    gcv = months_since(day, last["cerv"])
    gh = months_since(day, last["hearing"])
    h: dict[str, np.ndarray] = {}
    h["dental_checkup"] = sigmoid(
        -3.17 + 0.25 * z + 0.55 * ((gd >= 6) & (gd < 15)) + 0.35 * (gd2 < 30) - 0.35 * (gd > 24)
        + 0.12 * (formula - 2.5) + 0.45 * ((age >= 3) & (age < 25)) - 0.01 * np.maximum(age - 50, 0)
        + 0.2 * online - 2.0 * (age < 3) - 1.5 * (gd < 3)
    )  # fmt: skip
    h["eye_exam"] = sigmoid(
        -4.15 + 0.15 * z + 0.8 * (ge >= 24) + 0.4 * (ge >= 12) + 0.6 * (age >= 40) + 0.3 * (age >= 60)
        + 0.3 * ((age >= 5) & (age < 18)) - 1.2 * (ge < 6)
    )  # fmt: skip
    h["breast_screening"] = _screening(z, gm, 21.0, -4.85, 1.9) * (female & (age >= 50) & (age < 75))
    h["colorectal_screening"] = _screening(z, gc, 21.0, -5.8, 1.7) * ((age >= 50) & (age < 75))
    h["cervical_screening"] = _screening(z, gcv, 24.0, -5.5, 1.9) * (female & (age >= 25) & (age < 66))
    h["flu_vaccination"] = flu_hazard(b.flu_season[:, cols], day, month, age, z, chronic)
    h["hearing_check"] = sigmoid(
        np.where(age >= 60, -5.1 + 0.05 * (age - 60), -7.5) + 0.6 * (gh >= 24) + 0.15 * z
        - 2.0 * (gh < 12)
    )  # fmt: skip
    step = prevention_step_start(age, b.birth[:, cols].astype(np.int64))
    due = (step != NO_DAY) & ((last["prev_check"] == NO_DAY) | (last["prev_check"] < step))
    h["prevention_checkup"] = due * sigmoid(-4.35 + 0.3 * z + 0.5 * online + 0.3 * (formula - 2.5))
    h["post_hospital_support"] = household_support(b, day)[:, cols]
    return {a: np.where(b.exists[:, cols], v, 0.0) for a, v in h.items()}


def household_stay(b: Block) -> np.ndarray:
    """Day of the latest hospital stay of anyone covered by each contract, shape (n,)."""
    return np.where(b.exists, b.last["hosp"], NO_DAY).max(axis=1)


def household_support(b: Block, day: int) -> np.ndarray:
    """Post-hospital support (home help, sessions that may recur) is arranged by the subscriber
    after anyone's stay in the household: a hazard in the subscriber's slot only, shape (n, SLOTS)."""
    stay = household_stay(b)
    out = np.zeros(b.exists.shape)
    out[:, 0] = (stay != NO_DAY) * support_hazard(months_since(day, stay), support_need(b, day))
    return out


def support_need(b: Block, day: int) -> np.ndarray:
    """How much a household needs home help after a stay (a logit), shape (n,): older
    subscribers, people living alone and those under long-term treatment need it more."""
    age = b.age(day)[:, 0]
    alone = ~b.exists[:, 1]
    chronic = b.last["chronic"][:, 0] != NO_DAY
    z = DILIGENCE_EFFECT * b.diligence[:, 0]
    return -1.4 + 0.8 * (age >= 70) + 0.6 * alone + 0.4 * chronic + 0.15 * z


def support_hazard(after: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Monthly hazard of taking up home support ``after`` months after a stay."""
    first, last = SUPPORT_MONTHS
    logit = need - 0.4 * np.clip(after - first, 0.0, last - first)
    return sigmoid(logit) * (after >= first) * (after <= last)


def _screening(
    z: np.ndarray, gap: np.ndarray, due_after: np.ndarray | float, base: float, due_effect: float
) -> np.ndarray:
    due = gap >= due_after
    habit = gap < HABIT_MONTHS
    return sigmoid(base + 0.35 * z + due_effect * due + 0.9 * (due & habit) - 2.0 * (gap < 15))


def flu_season_of(day_year: int, month: int) -> int:
    """Flu seasons are named by the year they start (October)."""
    return day_year if month >= 10 else day_year - 1


def flu_hazard(
    flu_season: np.ndarray, day: int, month: int, age: np.ndarray, z: np.ndarray, chronic: np.ndarray
) -> np.ndarray:
    year = int(np.datetime64(day, "D").astype("datetime64[Y]").astype(np.int64)) + 1970
    season = flu_season_of(year, month)
    eligible = (age >= 65) | chronic
    last_season = flu_season == season - 1
    logit = -2.4 + 0.2 * z + 2.2 * last_season + 0.6 * (age >= 75) + 0.3 * chronic
    logit = np.where(eligible, logit, logit - 2.5)
    done = flu_season == season
    # the season weight scales the hazard's log-survival, so it stays a probability
    return (1.0 - (1.0 - sigmoid(logit)) ** season_weight(month)) * ~done


NEW_DRIVER_MONTHS = (3.0, 12.0)
"""Months after a child's 18th birthday when the household looks for car insurance."""
MOMENTS = ("birth", "marriage", "separation", "move", "child18", "spouse_death")


@dataclass(frozen=True)
class OfferSituation:
    """What a subscriber's offer hazards depend on, on one day (one value per member).

    The ground truth builds the situations a member may be in later in a label window
    (retired, after a move, a birth...) by replacing some of these fields.
    """

    age: np.ndarray
    status: np.ndarray
    contract: np.ndarray
    formula: np.ndarray
    marital: np.ndarray
    online: np.ndarray
    responsive: np.ndarray
    spouse: np.ndarray
    youngest: np.ndarray
    """Youngest covered child's age (inf without children)."""
    retire_age: np.ndarray
    holds: np.ndarray
    oop12: np.ndarray
    since: dict[str, np.ndarray]
    """Months since each life moment of ``MOMENTS`` (``FAR`` when it never happened)."""

    @classmethod
    def of(cls, b: Block, day: int, oop12: np.ndarray) -> OfferSituation:
        ages = b.age(day)
        return cls(
            age=ages[:, 0], status=b.status, contract=b.contract, formula=b.formula, marital=b.marital,
            online=(b.online != NO_DAY) & (b.online <= day), responsive=b.responsive,
            spouse=b.exists[:, 1], youngest=np.where(b.exists[:, 2:], ages[:, 2:], np.inf).min(axis=1),
            retire_age=b.retire_age, holds=b.holding != NO_DAY, oop12=oop12,
            since={m: months_since(day, b.moment[m]) for m in MOMENTS},
        )  # fmt: skip


def offer_hazards(b: Block, day: int, oop12: np.ndarray) -> dict[str, np.ndarray]:
    """Monthly hazard of taking each offer for every member, shape (n,)."""
    return situation_hazards(OfferSituation.of(b, day, oop12))


def situation_hazards(s: OfferSituation) -> dict[str, np.ndarray]:
    """Monthly hazard of taking each offer in these situations.

    Offers depend only on what an ``offers`` model may see (demographic, household,
    contract, engagement), except the health-data offer, which needs claims.
    """
    age, status, since = s.age, s.status, s.since
    working = np.isin(status, WORKING)
    indiv = s.contract == 0
    u = s.responsive + 0.35 * s.online
    alone = ~s.spouse
    h: dict[str, np.ndarray] = {}
    h["prevoyance"] = sigmoid(
        -5.5 + 1.9 * (since["birth"] <= 6) + 1.1 * (since["marriage"] <= 6) + 0.9 * (working & indiv)
        + 0.6 * (status == STATUS["self_employed"]) + 0.8 * (s.youngest < 6)
        - 0.05 * np.maximum(age - 45, 0) + u
    ) * (age < 65)  # fmt: skip
    h["retirement_savings"] = sigmoid(
        -6.0 + 1.3 * (age >= 45) + 0.6 * (age >= 55) + 0.6 * (status == STATUS["self_employed"])
        + 0.3 * (s.formula - 2) - 0.8 * (status == STATUS["unemployed"]) + u
    ) * (status != STATUS["retired"])  # fmt: skip
    h["home_insurance"] = sigmoid(
        -6.0 + 2.5 * (since["move"] <= 3) + 1.0 * ((since["marriage"] <= 6) | (since["separation"] <= 6))
        + 0.5 * (age < 35) - 0.5 * (age > 70) + u
    )  # fmt: skip
    # a new driver: some months after a child's 18th birthday, once the licence is passed
    new_driver = (since["child18"] >= NEW_DRIVER_MONTHS[0]) & (since["child18"] <= NEW_DRIVER_MONTHS[1])
    h["auto_insurance"] = sigmoid(
        -6.2 + 2.3 * new_driver + 1.0 * (since["move"] <= 3) + 0.4 * np.isfinite(s.youngest)
        - 0.6 * (age > 75) + u
    )  # fmt: skip
    retired = status == STATUS["retired"]
    h["long_term_care"] = sigmoid(
        -6.4 + 1.3 * ((age >= 55) & (age <= 75)) + 0.5 * retired + 0.4 * s.spouse
        + 0.8 * (s.marital == MARITAL["widowed"]) + u
    )  # fmt: skip
    h["funeral_cover"] = sigmoid(
        -7.0 + 1.5 * (age >= 60) + 0.5 * (age >= 70) + 0.4 * (age >= 75) + 0.6 * alone
        + 0.5 * (s.marital == MARITAL["widowed"]) + 2.3 * (since["spouse_death"] <= 12) + u
    )  # fmt: skip
    h["health_formula_upgrade"] = sigmoid(
        -5.8 + 0.0028 * np.minimum(s.oop12, 1200.0) + 0.5 * (s.formula == 1) + 0.3 * indiv + u
    ) * (s.formula < 4)  # fmt: skip
    for j, product in enumerate(vocab.PRODUCTS):
        h[product] = h[product] * ~s.holds[..., j]
    return h
