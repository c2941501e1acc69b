"""Historical campaigns: a logging policy that exposed members to actions, partly at random.

Each month a share of members is targeted; among the actions the old rules
allow (eligibility, consent, products held), one is drawn from a softmax over a
crude rule score. The probability of that draw is logged with the exposure, so
the data supports off-policy evaluation later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.synthetic import behaviour as bh
from features.synthetic.records import NO_DAY
from features.synthetic.state import STATUS
from nba import vocab

if TYPE_CHECKING:
    from features.synthetic.simulate import Simulation

TARGETED_SHARE = 0.08
FLU_CAMPAIGN = (9, 10, 11, 12)
"""Months the old rules proposed the flu vaccine."""
RESPONSE = {r: i for i, r in enumerate(vocab.RESPONSES)}
CHANNEL = {c: i for i, c in enumerate(vocab.INTERACTION_CHANNELS)}
CHANNEL_WEIGHT = {"app": 3.0, "push": 2.0, "email": 2.0, "sms": 1.0, "phone": 0.5, "advisor": 0.5}
DAY_US = 86_400_000_000


def rule_masks(sim: Simulation, active: np.ndarray, d0: int, month: int) -> tuple[np.ndarray, np.ndarray]:
    """(eligible, relevant) per member and action by the old campaign rules, shape (k, 16)."""
    b = sim.b
    age = b.age(d0)[active, 0]
    female = b.sex[active, 0] == 0
    gap = {f: bh.months_since(d0, b.last[f][active, 0]) for f in b.last}
    chronic = b.last["chronic"][active, 0] != NO_DAY
    holds = b.holding[active] != NO_DAY
    since = {m: bh.months_since(d0, b.moment[m][active]) for m in b.moment}
    step = bh.prevention_step_start(age, b.birth[active, 0].astype(np.int64))
    flu_time = month in FLU_CAMPAIGN
    e, r = {}, {}
    e["dental_checkup"], r["dental_checkup"] = age >= 18, gap["dental"] >= 12
    e["eye_exam"], r["eye_exam"] = age >= 40, gap["eye"] >= 24
    e["breast_screening"] = female & (age >= 50) & (age < 75)
    r["breast_screening"] = gap["mammo"] >= 24
    e["colorectal_screening"], r["colorectal_screening"] = (
        (age >= 50) & (age < 75),
        gap["colo"] >= 24,
    )
    e["cervical_screening"] = female & (age >= 25) & (age < 66)
    r["cervical_screening"] = gap["cerv"] >= 36
    e["flu_vaccination"] = ((age >= 65) | chronic) & flu_time
    r["flu_vaccination"] = e["flu_vaccination"]
    e["hearing_check"], r["hearing_check"] = age >= 60, gap["hearing"] >= 36
    e["prevention_checkup"] = step != NO_DAY
    r["prevention_checkup"] = e["prevention_checkup"] & (b.last["prev_check"][active, 0] < step)
    e["post_hospital_support"] = bh.months_since(d0, bh.household_stay(b)[active]) <= 1.0
    r["post_hospital_support"] = e["post_hospital_support"]
    e["prevoyance"], r["prevoyance"] = age < 65, (since["birth"] <= 6) | (since["marriage"] <= 6)
    retired = b.status[active] == STATUS["retired"]
    e["retirement_savings"], r["retirement_savings"] = ~retired & (age >= 40), age >= 45
    e["home_insurance"], r["home_insurance"] = np.ones_like(female), since["move"] <= 3
    e["auto_insurance"], r["auto_insurance"] = age < 80, since["child18"] <= 6
    e["long_term_care"], r["long_term_care"] = age >= 50, (age >= 55) & (age <= 75)
    e["funeral_cover"], r["funeral_cover"] = age >= 60, since["spouse_death"] <= 12
    e["health_formula_upgrade"] = b.formula[active] < 4
    r["health_formula_upgrade"] = sim.oop[active].sum(axis=1) > 300
    eligible = np.stack([e[a] for a in vocab.ACTION_IDS], axis=1)
    for j, product in enumerate(vocab.PRODUCTS):
        eligible[:, vocab.ACTION_IDS.index(product)] &= ~holds[:, j]
    relevant = np.stack([r[a] for a in vocab.ACTION_IDS], axis=1)
    return eligible & consented(sim, active, d0), relevant


def consented(sim: Simulation, active: np.ndarray, d0: int) -> np.ndarray:
    c, b = sim.consent, sim.b
    prevention = c.allowed_prevention(d0)[active]
    offers = c.allowed_offers()[active] & ~b.vulnerable[active]
    health = offers & c.allowed_health(d0)[active]
    by_purpose = {"prevention": prevention, "offers": offers, "offers_health_data": health}
    return np.stack([by_purpose[vocab.ACTION_PURPOSES[a]] for a in vocab.ACTION_IDS], axis=1)


def run_campaigns(
    sim: Simulation, t: int, active: np.ndarray, d0: int, d1: int,
    prev: dict[str, np.ndarray], offers: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:  # fmt: skip
    """Expose this month's targets; returns, per action, who was exposed (and '_day': when)."""
    rng, n = sim.rng, sim.b.n
    month = int(sim.calendar.month_numbers[t])
    targeted = active[rng.random(active.size) < TARGETED_SHARE]
    p = choice_probabilities(*rule_masks(sim, targeted, d0, month))
    has = p.any(axis=1)
    targeted, p = targeted[has], p[has]
    choice = (rng.random(targeted.size)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    choice = np.minimum(choice, len(vocab.ACTION_IDS) - 1)
    prob = TARGETED_SHARE * p[np.arange(targeted.size), choice]
    day = (d0 + rng.random(targeted.size) * (d1 - d0)).astype(np.int32)
    channel = choose_channels(sim, targeted, choice, day)
    hazard = np.stack([prev[a][targeted, 0] if a in prev else offers[a][targeted]
                       for a in vocab.ACTION_IDS], axis=1)[np.arange(targeted.size), choice]  # fmt: skip
    sim.pending = {"member": targeted, "action": choice, "day": day, "channel": channel,
                   "prob": prob, "hazard": hazard, "accepted": np.zeros(targeted.size, bool)}  # fmt: skip
    lift: dict[str, np.ndarray] = {"_day": np.full(n, NO_DAY, dtype=np.int32)}
    lift["_day"][targeted] = day
    for j, a in enumerate(vocab.ACTION_IDS):
        exposed = np.zeros(n, dtype=bool)
        exposed[targeted[choice == j]] = True
        lift[a] = exposed
    return lift


def choice_probabilities(eligible: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """The old rules' draw among a targeted member's eligible actions: a softmax over a crude
    rule score, shape (k, 16); a row of zeros when no action is eligible."""
    score = np.where(eligible, 1.5 * relevant, -np.inf)
    has = eligible.any(axis=1)
    p = np.zeros(score.shape)
    top = score[has].max(axis=1, keepdims=True)
    p[has] = np.exp(score[has] - top)
    p[has] /= p[has].sum(axis=1, keepdims=True)
    return p


def choose_channels(sim: Simulation, idx: np.ndarray, action: np.ndarray, day: np.ndarray) -> np.ndarray:
    b, c, rng = sim.b, sim.consent, sim.rng
    k = idx.size
    weights = np.zeros((k, len(vocab.INTERACTION_CHANNELS)))
    online = (b.online[idx] != NO_DAY) & (b.online[idx] <= day)
    weights[:, CHANNEL["app"]] = CHANNEL_WEIGHT["app"] * online
    weights[:, CHANNEL["advisor"]] = CHANNEL_WEIGHT["advisor"]
    for j, ch in enumerate(vocab.OPT_IN_CHANNELS):
        weights[:, CHANNEL[ch]] = CHANNEL_WEIGHT[ch] * c.opt_in[idx, j]
    cum = np.cumsum(weights, axis=1)
    u = rng.random(k) * cum[:, -1]
    return (u[:, None] > cum).sum(axis=1)


def mark_accepted(sim: Simulation, idx: np.ndarray, action: int) -> None:
    pend = sim.pending
    hit = np.isin(pend["member"], idx) & (pend["action"] == action)
    pend["accepted"] |= hit


def close_campaigns(sim: Simulation, t: int) -> None:
    """Draw the responses of this month's exposures and record them."""
    pend, rng = sim.pending, sim.rng
    k = pend["member"].size
    if k == 0:
        return
    clicked = pend["accepted"] | (rng.random(k) < np.minimum(0.9, 0.08 + 3.0 * pend["hazard"]))
    dismissed = ~clicked & (rng.random(k) < 0.25)
    response = np.select([pend["accepted"], clicked, dismissed],
                         [RESPONSE["accepted"], RESPONSE["clicked"], RESPONSE["dismissed"]],
                         RESPONSE["none"])  # fmt: skip
    exposed = pend["day"].astype(np.int64) * DAY_US + rng.integers(8 * 3600, 21 * 3600, k) * 1_000_000
    responded = exposed + rng.integers(600, 5 * 86_400, k) * 1_000_000
    late = responded >= sim.calendar.end * DAY_US
    response = np.where(late, RESPONSE["none"], response)
    responded = np.where(response == RESPONSE["none"], -1, responded)
    year, month = int(sim.calendar.years[t]), int(sim.calendar.month_numbers[t])
    sim.interactions.add(
        member=pend["member"], action=pend["action"], channel=pend["channel"], exposed=exposed,
        prob=pend["prob"], response=response, responded=responded,
        campaign=np.full(k, year * 100 + month),
    )  # fmt: skip
