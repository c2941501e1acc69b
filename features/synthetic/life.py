"""Monthly rates of the life events, shared by the simulation and the ground truth.

The simulation draws each event from these rates; the ground truth uses the same rates to
take into account, in expectation, the life moments that will happen during a label window.
"""

from __future__ import annotations

import numpy as np

from features.synthetic import calibration as cal
from features.synthetic.state import MARITAL, SPOUSE, Block

COUPLE_FORMING_PER_YEAR = 0.055
"""Single subscribers aged 20-65 who start living with someone, per year."""
MARRY_WHEN_FORMING = 0.3
MOVE_WHEN_FORMING = 0.5
WEDDING_PER_YEAR = 0.06
"""Cohabiting couples who marry or sign a PACS, per year."""
SEPARATION_PER_YEAR = {"formal": 0.014, "cohabiting": 0.03}
MOVE_WHEN_SEPARATING = 0.6
TERMINATION_PER_YEAR = {"over_75": 0.01, "other": 0.03}


def termination_rate(age: np.ndarray) -> np.ndarray:
    """Monthly probability that a membership ends for another reason than death."""
    return np.where(age > 75, TERMINATION_PER_YEAR["over_75"], TERMINATION_PER_YEAR["other"]) / 12


def death_rate(age: np.ndarray) -> np.ndarray:
    """Monthly probability of dying at this age."""
    return 1.0 - (1.0 - cal.annual_mortality(age)) ** (1 / 12)


def forming_couple(age: np.ndarray, single: np.ndarray) -> np.ndarray:
    """Monthly probability that a single subscriber starts a couple."""
    return single * (age > 20) * (age < 65) * (COUPLE_FORMING_PER_YEAR / 12)


def formal(marital: np.ndarray) -> np.ndarray:
    return np.isin(marital, [MARITAL["married"], MARITAL["pacsed"]])


def separating(couple: np.ndarray, marital: np.ndarray) -> np.ndarray:
    """Monthly probability that a couple separates."""
    yearly = np.where(formal(marital), SEPARATION_PER_YEAR["formal"], SEPARATION_PER_YEAR["cohabiting"])
    return couple * yearly / 12


def wedding(couple: np.ndarray, marital: np.ndarray) -> np.ndarray:
    """Monthly probability that a cohabiting couple marries."""
    return couple * ~formal(marital) * (WEDDING_PER_YEAR / 12)


def move_rate(age: np.ndarray) -> np.ndarray:
    """Monthly probability of a move for other reasons than a couple forming or separating."""
    return cal.age_curve(cal.MOVE_RATE_KNOTS, age) / 12


def hospital_rate(age: np.ndarray, chronic: np.ndarray) -> np.ndarray:
    """Monthly probability of a hospital stay."""
    curve = cal.AGE_PROFILE["hospital"]
    profile = cal.age_curve(curve, age) / cal.population_mean(curve)
    return cal.HOSPITAL_STAYS_PER_YEAR / 12 * profile * np.where(chronic, 1.5, 0.87)


def birth_rates(b: Block, idx: np.ndarray, day: int) -> np.ndarray:
    """Monthly probability of a birth for each adult of these households, shape (k, 2)."""
    age = b.age(day)[idx, :2]
    couple = b.exists[idx, SPOUSE]
    kids = b.exists[idx, 2:].sum(axis=1)
    rate = np.interp(age, cal.FERTILITY_AGE_KNOTS, cal.FERTILITY_PER_YEAR) / 12
    rate *= np.where(couple, 1.0, 0.2)[:, None] * np.select([kids < 2, kids == 2], [1.0, 0.45], 0.2)[:, None]
    women = (b.sex[idx, :2] == 0) & b.exists[idx, :2]
    return np.where(women, rate, 0.0)


def moment_rates(b: Block, idx: np.ndarray, day: int) -> dict[str, np.ndarray]:
    """Monthly probability of each life moment that drives an offer, for these households."""
    age = b.age(day)[idx, 0]
    couple = b.exists[idx, SPOUSE]
    marital = b.marital[idx]
    forming = forming_couple(age, ~couple)
    split = separating(couple, marital)
    births = birth_rates(b, idx, day)
    room = ~b.exists[idx, 2:].all(axis=1)
    spouse_age = np.where(couple, b.age(day)[idx, SPOUSE], 0.0)
    return {
        "move": move_rate(age) + forming * MOVE_WHEN_FORMING + split * MOVE_WHEN_SEPARATING,
        "marriage": forming * MARRY_WHEN_FORMING + wedding(couple, marital),
        "separation": split,
        "birth": room * (1.0 - np.prod(1.0 - births, axis=1)),
        "spouse_death": couple * death_rate(spouse_age),
    }
