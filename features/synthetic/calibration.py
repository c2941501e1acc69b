"""Figures the synthetic world is calibrated to (shared/design/CALIBRATION.md).

Everything here is a plain constant or a small pure function of age, so a
reviewer can check each figure against its public source in one place.
"""

from __future__ import annotations

from typing import Final

import numpy as np

# France's age pyramid, INSEE 2024, share of the population by 5-year band (0-4 ... 95-99).
PYRAMID_BANDS: Final = np.arange(0, 100, 5)
_PYRAMID = np.array(
    [5.2, 5.8, 6.2, 6.2, 5.8, 5.6, 6.0, 6.3, 6.3, 6.3, 6.6, 6.5, 6.2, 5.8, 5.4, 4.1, 2.9, 2.0, 1.0, 0.3]
)  # fmt: skip
PYRAMID_SHARES: Final = _PYRAMID / _PYRAMID.sum()

# Care spending per person and year, euros (DREES 2023; per-person = total / 68.0 M).
SPEND_PER_PERSON: Final[dict[str, float]] = {
    "hospital": 1796.0,
    "gp": 157.0,
    "specialist": 220.0,
    "dental": 227.0,
    "pharmacy": 491.0,
    "optical": 119.0,
    "hearing": 30.0,
    "nursing_physio": 275.0,
    "laboratory": 70.0,
    "transport": 99.0,
}

# Relative use by age for each routine category, at ages AGE_KNOTS (interpolated).
AGE_KNOTS: Final = np.array([0, 5, 15, 25, 35, 45, 55, 65, 75, 85, 100], dtype=float)
AGE_PROFILE: Final[dict[str, tuple[float, ...]]] = {
    "gp": (1.6, 1.0, 0.7, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 1.8, 1.9),
    "specialist": (0.6, 0.5, 0.5, 0.7, 0.8, 0.9, 1.1, 1.4, 1.6, 1.5, 1.3),
    "pharmacy": (0.6, 0.3, 0.3, 0.4, 0.5, 0.7, 1.0, 1.4, 1.8, 2.1, 2.2),
    "nursing_physio": (0.2, 0.2, 0.4, 0.5, 0.6, 0.7, 0.9, 1.3, 2.3, 4.0, 5.0),
    "laboratory": (0.3, 0.2, 0.4, 0.6, 0.7, 0.9, 1.1, 1.4, 1.6, 1.7, 1.7),
    "transport": (0.3, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 1.4, 2.6, 4.5, 6.0),
    "teleconsultation": (1.0, 0.6, 0.8, 1.4, 1.4, 1.2, 1.0, 0.8, 0.5, 0.3, 0.2),
    "hospital": (0.9, 0.35, 0.5, 0.6, 0.6, 0.8, 1.1, 1.8, 2.8, 3.8, 4.2),
}

GYNECOLOGY_SHARE: Final = 0.2
"""Share of specialist visits that are gynaecological follow-ups, all made by women aged 18-69."""
ADULT_WOMEN_SHARE: Final = 0.35
"""Share of women aged 18-69 among covered people (INSEE: about a third of the population)."""
GYNECOLOGY_DILIGENCE: Final = 0.8
"""How strongly the hidden diligence trait sets a woman's gynaecological follow-up (a log-rate
per standard deviation): in France most cervical smears are taken at such visits, and women who
keep a regular follow-up also keep their screenings up to date."""

# Routine categories: claim lines per person and year (population average), mean cost,
# lognormal sigma, seasonal amplitude (peak in January) and acts with their shares.
ROUTINE: Final[dict[str, dict[str, object]]] = {
    "gp": {"rate": 3.6, "sigma": 0.35, "season": 0.25, "acts": {"consultation": 1.0}},
    "specialist": {
        "rate": 1.6, "sigma": 0.5, "season": 0.0,
        "acts": {"cardiologist": 0.375, "dermatologist": 0.375, "other": 0.25},
    },
    "pharmacy": {"rate": 3.6, "sigma": 0.8, "season": 0.2, "acts": {"dispensing": 1.0}},
    "nursing_physio": {
        "rate": 1.4, "sigma": 0.7, "season": 0.0, "acts": {"nursing": 0.5, "physiotherapy": 0.5},
    },
    "laboratory": {"rate": 1.2, "sigma": 0.5, "season": 0.1, "acts": {"blood_test": 0.8, "other": 0.2}},
    "transport": {"rate": 0.35, "sigma": 0.6, "season": 0.0,
                  "acts": {"ambulance": 0.4, "medical_taxi": 0.6}},
    "teleconsultation": {"rate": 0.25, "sigma": 0.1, "season": 0.2,
                         "acts": {"teleconsultation": 1.0}},
}  # fmt: skip

# Chronic treatment (ALD): monthly dispensing, fully paid by the social security.
CHRONIC_MONTHLY_COST: Final = 105.0
CHRONIC_PREVALENCE_KNOTS: Final = (0.01, 0.02, 0.03, 0.05, 0.07, 0.11, 0.18, 0.29, 0.42, 0.55, 0.6)
CHRONIC_INCIDENCE_PER_YEAR: Final = 0.012  # scaled by the age profile of hospital use

# Hospital: stays per person and year (population average), mean cost of a stay.
HOSPITAL_STAYS_PER_YEAR: Final = 0.13
HOSPITAL_STAY_COST: Final = 11_800.0
DAY_HOSPITAL_PER_YEAR: Final = 0.10
DAY_HOSPITAL_COST: Final = 1_500.0

# Dental episodes: a check-up, then care or a prosthesis for some.
DENTAL_CHECKUP_COST: Final = 30.0
DENTAL_CARE = (0.6, 115.0)  # probability after a check-up, mean cost
DENTAL_PROSTHESIS = (0.18, 1_450.0)

# Eye exams lead to glasses or lenses for most; hearing tests to aids for some.
EYE_EXAM_COST: Final = 55.0
OPTICAL_AFTER_EXAM: Final = (0.75, 370.0)
HEARING_TEST_COST: Final = 40.0
HEARING_AID_AFTER_TEST: Final = (0.3, 1_900.0)

# Share of a line's cost paid by the social security, by (category, act); default by category.
SOCIAL_SECURITY_SHARE: Final[dict[str, float]] = {
    "hospital": 0.92, "gp": 0.70, "specialist": 0.65, "dental": 0.39, "pharmacy": 0.66,
    "optical": 0.035, "hearing": 0.15, "nursing_physio": 0.65, "laboratory": 0.65,
    "transport": 0.90, "screening": 1.0, "vaccination": 0.65, "maternity": 1.0,
    "teleconsultation": 0.70, "prevention": 1.0, "home_support": 0.0,
}  # fmt: skip
SOCIAL_SECURITY_SHARE_BY_ACT: Final[dict[str, float]] = {
    "chronic_treatment": 1.0,
    "checkup": 0.70,
    "care": 0.65,
    "prosthesis": 0.25,
    "hearing_test": 0.70,
    "ophthalmologist": 0.70,
}
# Share of what remains after the social security that the mutuelle pays, by formula 1-4.
MUTUELLE_SHARE_OF_REST: Final[dict[str, tuple[float, float, float, float]]] = {
    "default": (0.50, 0.62, 0.74, 0.86),
    "hospital": (0.60, 0.70, 0.82, 0.92),
    "dental": (0.55, 0.68, 0.82, 0.92),
    "optical": (0.45, 0.62, 0.78, 0.92),
    "hearing": (0.45, 0.60, 0.75, 0.90),
    "home_support": (1.0, 1.0, 1.0, 1.0),
}

# Demography (INSEE): births 663,000 in 2024 for 68.0 M people = 9.75 per 1,000.
FERTILITY_AGE_KNOTS: Final = np.array([18, 22, 27, 32, 37, 42, 46], dtype=float)
FERTILITY_PER_YEAR: Final = np.array([0.035, 0.10, 0.18, 0.18, 0.10, 0.028, 0.0])
RETIREMENT_EARLY_SHARE: Final = 0.14  # retire before 60
RETIREMENT_MEAN_AGE: Final = 63.3  # for the others; overall mean about 62.75
MOVE_RATE_KNOTS: Final = (0.14, 0.14, 0.14, 0.16, 0.11, 0.08, 0.06, 0.05, 0.04, 0.04, 0.04)


def age_curve(knots: tuple[float, ...] | np.ndarray, age: np.ndarray) -> np.ndarray:
    """Interpolate a curve given at AGE_KNOTS for an array of ages."""
    return np.interp(age, AGE_KNOTS, np.asarray(knots, dtype=float))


def population_mean(knots: tuple[float, ...] | np.ndarray) -> float:
    """Mean of an age curve over France's pyramid (mid-band ages)."""
    return float(np.dot(age_curve(knots, PYRAMID_BANDS + 2.5), PYRAMID_SHARES))


def annual_mortality(age: np.ndarray) -> np.ndarray:
    """Gompertz mortality close to France's life table (about 9 deaths per 1,000 a year)."""
    return np.minimum(np.exp(-10.75 + 0.094 * age), 0.5)
