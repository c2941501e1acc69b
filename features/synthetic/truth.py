"""The ground truth: the true probability of every action's label event, for evaluation only.

At the first day of each month, before anything of that month happens, each member's truth
is the probability that the event a label counts (training/labels.py, ACTIONS.md) happens
in the next ``HORIZON_DAYS`` days, given everything the simulation knows on that day and
nothing it will draw later:

- the month-by-month hazards of the window, evaluated on each month's first day (so gaps
  grow, life moments age, birthdays and retirements happen on time), each month weighted
  by the share of its days inside the window;
- the campaigns of the old rules, in expectation: the probability of being exposed to the
  action each month times the lift of an exposure (``behaviour.EXPOSURE_LIFT``);
- life moments that may happen during the window (a move, a marriage, a birth, a
  separation, the loss of a spouse) and hospital stays, in expectation, at the
  simulation's own rates (``life``);
- the chance that the membership ends before the action (termination or death);
- for actions whose label counts the lines that follow an act (dental care after a
  check-up, glasses after an eye exam, hearing aids after a test), the chance that a line
  following an act done before the window falls inside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from features.synthetic import behaviour as bh
from features.synthetic import life
from features.synthetic.campaigns import (
    FLU_CAMPAIGN,
    TARGETED_SHARE,
    choice_probabilities,
    consented,
    rule_masks,
)
from features.synthetic.claims import FOLLOW_UPS
from features.synthetic.records import NO_DAY
from features.synthetic.state import MARITAL, STATUS, YEAR, Block
from nba import vocab

if TYPE_CHECKING:
    from features.synthetic.simulate import Simulation

HORIZON_DAYS = 90
"""The label window (training/labels.py HORIZON_DAYS)."""
LAST_ACTS = {"dental_checkup": ("dental", "dental_prev"), "eye_exam": ("eye",), "hearing_check": ("hearing",)}
"""Where the simulation keeps the day of the acts that ``FOLLOW_UPS`` may follow."""
ACTION_INDEX = {a: i for i, a in enumerate(vocab.ACTION_IDS)}


@dataclass(frozen=True)
class Window:
    """The calendar months a label window touches."""

    starts: tuple[int, ...]
    """First day of each month."""
    nexts: tuple[int, ...]
    """First day of the month after each month."""
    months: tuple[int, ...]
    """Month number (1-12) of each month."""
    cover: tuple[float, ...]
    """Share of each month's days inside the window."""
    end: int
    """Day after the window."""


def window(d0: int, horizon: int = HORIZON_DAYS) -> Window:
    """The months from ``d0`` (a first of month) until ``horizon`` days later."""
    first = np.datetime64(d0, "D").astype("datetime64[M]")
    end = d0 + horizon
    starts, nexts, months, cover = [], [], [], []
    k = 0
    while True:
        start = int((first + k).astype("datetime64[D]").astype(np.int64))
        if start >= end:
            break
        nxt = int((first + k + 1).astype("datetime64[D]").astype(np.int64))
        starts.append(start)
        nexts.append(nxt)
        months.append(int((first + k).astype(np.int64) % 12 + 1))
        cover.append((min(nxt, end) - start) / (nxt - start))
        k += 1
    return Window(tuple(starts), tuple(nexts), tuple(months), tuple(cover), end)


def ninety_day_truth(sim: Simulation, d0: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Members active on ``d0`` and, per action, their probability of the label event."""
    b = sim.b
    idx = np.flatnonzero(b.active(d0))
    w = window(d0)
    oop12 = sim.oop.sum(axis=1)
    exposure = exposures(sim, idx, w)
    alive = staying(b, idx, w)
    hazards = prevention_ahead(b, idx, w) | offers_ahead(b, idx, w, oop12)
    stays = household_stays(b, idx, w)
    # a new stay in the household replaces the one the support would follow
    replaced = 1.0 - np.cumprod(1.0 - np.minimum(stays, 1.0), axis=0)
    hazards["post_hospital_support"] = list(hazards["post_hospital_support"] * (1.0 - replaced))
    out = {}
    for a in vocab.ACTION_IDS:
        lift, j = bh.EXPOSURE_LIFT[a], ACTION_INDEX[a]
        monthly = [exposed(h, q[:, j], lift) for h, q in zip(hazards[a], exposure, strict=True)]
        p = within(monthly, alive, w.cover)
        if a in FOLLOW_UPS:
            p = 1.0 - (1.0 - p) * (1.0 - follow_ups(sim, idx, a, d0, w.end))
        if a == "post_hospital_support":
            p = 1.0 - (1.0 - p) * (1.0 - support_after_new_stays(b, idx, w, alive, stays))
        out[a] = p
    return idx, out


def exposures(sim: Simulation, idx: np.ndarray, w: Window) -> list[np.ndarray]:
    """Probability of an exposure to each action in each month of the window, by the old rules
    applied to the situation on the window's first day, except what changes on its own: the
    flu campaign runs in autumn only, post-hospital support is proposed in the month after a stay."""
    eligible, relevant = rule_masks(sim, idx, w.starts[0], FLU_CAMPAIGN[0])
    flu, support = ACTION_INDEX["flu_vaccination"], ACTION_INDEX["post_hospital_support"]
    allowed = consented(sim, idx, w.starts[0])[:, support]
    stay = bh.household_stay(sim.b)[idx]
    out = []
    for start, month in zip(w.starts, w.months, strict=True):
        e, r = eligible.copy(), relevant.copy()
        e[:, flu] &= month in FLU_CAMPAIGN
        e[:, support] = r[:, support] = (bh.months_since(start, stay) <= 1.0) & allowed
        out.append(TARGETED_SHARE * choice_probabilities(e, r & e))
    return out


def exposed(h: np.ndarray, q: np.ndarray, lift: float) -> np.ndarray:
    """A month's hazard when an exposure (probability ``q``) raises it to 1 - (1 - h) ** lift."""
    return h + q * (1.0 - (1.0 - h) ** lift - h)


def within(monthly: list[np.ndarray], alive: list[np.ndarray], cover: tuple[float, ...]) -> np.ndarray:
    """Probability of a first event in the window, month by month, while still a member."""
    p = np.zeros_like(monthly[0])
    none_yet = np.ones_like(monthly[0])
    for h, s, c in zip(monthly, alive, cover, strict=True):
        p += none_yet * s * c * h
        none_yet *= 1.0 - c * h
    return p


def staying(b: Block, idx: np.ndarray, w: Window) -> list[np.ndarray]:
    """Probability that the membership still runs in each month of the window (no action is
    taken in the month it ends)."""
    out, stay = [], np.ones(idx.size)
    for day in w.starts:
        age = b.age(day)[idx, 0]
        stay = stay * (1.0 - life.termination_rate(age)) * (1.0 - life.death_rate(age))
        out.append(stay)
    return out


def follow_ups(sim: Simulation, idx: np.ndarray, action: str, d0: int, end: int) -> np.ndarray:
    """Probability that a line following an act done before ``d0`` falls in [d0, end)."""
    none = np.ones(idx.size)
    for field in LAST_ACTS[action]:
        act = sim.b.last[field][idx, 0].astype(np.int64)
        simulated = (act != NO_DAY) & (act >= sim.calendar.start)
        for p, (lo, hi) in FOLLOW_UPS[action]:
            overlap = np.clip(np.minimum(act + hi, end) - np.maximum(act + lo, d0), 0, None) / (hi - lo)
            none *= 1.0 - np.where(simulated, p * overlap, 0.0)
    return 1.0 - none


# --- prevention --------------------------------------------------------------------------


def prevention_ahead(b: Block, idx: np.ndarray, w: Window) -> dict[str, list[np.ndarray]]:
    """The subscriber's hazard of each prevention action in each month of the window."""
    out: dict[str, list[np.ndarray]] = {a: [] for a in vocab.PREVENTION_ACTIONS}
    for day, month in zip(w.starts, w.months, strict=True):
        h = bh.prevention_hazards(b, day, month)
        for a in vocab.PREVENTION_ACTIONS:
            out[a].append(h[a][idx, 0])
    return out


def household_stays(b: Block, idx: np.ndarray, w: Window) -> np.ndarray:
    """Expected hospital stays of each household in each month of the window, shape (K, k)."""
    chronic = b.last["chronic"][idx] != NO_DAY
    return np.stack(
        [(b.exists[idx] * life.hospital_rate(b.age(d)[idx], chronic)).sum(axis=1) for d in w.starts]
    )


def support_after_new_stays(
    b: Block, idx: np.ndarray, w: Window, alive: list[np.ndarray], stays: np.ndarray
) -> np.ndarray:
    """Probability of taking up post-hospital support after a stay, anyone's in the household,
    that happens during the window (in the middle of its month, on average)."""
    none = np.ones(idx.size)
    for j in range(len(w.starts)):
        miss = np.ones(idx.size)
        for k in range(j, len(w.starts)):
            need = bh.support_need(b, w.starts[k])[idx]
            miss *= 1.0 - w.cover[k] * bh.support_hazard(np.full(idx.size, k - j - 0.5), need)
        none *= 1.0 - np.minimum(stays[j], 1.0) * alive[j] * (1.0 - miss)
    return 1.0 - none


# --- offers ------------------------------------------------------------------------------


def offers_ahead(b: Block, idx: np.ndarray, w: Window, oop12: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The subscriber's expected hazard of each offer in each month of the window.

    A life moment that happens in month j changes the hazards from month j on; its effect
    is taken on the situation of the window's first day."""
    d0 = w.starts[0]
    months = [
        subset(on_time(b, bh.OfferSituation.of(b, day, oop12), d0, day, end), idx)
        for day, end in zip(w.starts, w.nexts, strict=True)
    ]
    now = bh.situation_hazards(stack(months))
    base = {a: v[0] for a, v in now.items()}
    rates = life.moment_rates(b, idx, d0)
    after = bh.situation_hazards(stack([after_moment(months[0], m) for m in rates]))
    k = np.arange(1, len(months) + 1)[:, None]
    chance = {m: 1.0 - (1.0 - rate) ** k for m, rate in rates.items()}
    out = {}
    for a in vocab.OFFER_ACTIONS:
        h = now[a] + sum(chance[m] * (after[a][i] - base[a]) for i, m in enumerate(rates))
        out[a] = list(np.clip(h, 0.0, 1.0))
    return out


def subset(s: bh.OfferSituation, idx: np.ndarray) -> bh.OfferSituation:
    fields = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name != "since"}
    return bh.OfferSituation(
        **{k: v[idx] for k, v in fields.items()}, since={m: v[idx] for m, v in s.since.items()}
    )


def stack(months: list[bh.OfferSituation]) -> bh.OfferSituation:
    """One situation whose arrays have a leading month axis."""
    names = [f.name for f in dataclasses.fields(bh.OfferSituation) if f.name != "since"]
    fields = {n: np.stack([getattr(s, n) for s in months]) for n in names}
    since = {m: np.stack([s.since[m] for s in months]) for m in months[0].since}
    return bh.OfferSituation(**fields, since=since)


def on_time(b: Block, s: bh.OfferSituation, d0: int, day: int, month_end: int) -> bh.OfferSituation:
    """What happens on time by the end of the month starting on ``day``: retirements at the
    planned age (or at 70), children turning 18."""
    retired = STATUS["retired"]
    age0, age_end = b.age(d0)[:, 0], b.age(month_end)[:, 0]
    retiring = (s.status != retired) & (((age0 < b.retire_age) & (age_end >= b.retire_age)) | (s.age >= 70))
    turned = b.exists[:, 2:] & (b.birth[:, 2:].astype(np.int64) + int(18 * YEAR) < month_end)
    turned &= b.birth[:, 2:].astype(np.int64) + int(18 * YEAR) >= d0
    latest = np.where(turned, b.birth[:, 2:].astype(np.int64) + int(18 * YEAR), NO_DAY).max(axis=1)
    child18 = np.where(latest != NO_DAY, bh.months_since(day, latest), s.since["child18"])
    return replace(
        s,
        status=np.where(retiring, retired, s.status),
        contract=np.where(retiring, 0, s.contract),
        since={**s.since, "child18": np.minimum(child18, s.since["child18"])},
    )


def after_moment(s: bh.OfferSituation, moment: str) -> bh.OfferSituation:
    """The situation just after a life moment."""
    since = {**s.since, moment: np.zeros_like(s.age)}
    if moment == "birth":
        return replace(s, since=since, youngest=np.zeros_like(s.age))
    if moment == "spouse_death":
        widowed = np.full_like(s.marital, MARITAL["widowed"])
        return replace(s, since=since, spouse=np.zeros_like(s.spouse), marital=widowed)
    if moment == "separation":
        return replace(s, since=since, spouse=np.zeros_like(s.spouse))
    if moment == "marriage":
        return replace(s, since=since, marital=np.full_like(s.marital, MARITAL["married"]))
    return replace(s, since=since)
