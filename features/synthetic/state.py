"""The state of one block of simulated households, and how it starts.

A block holds ``n`` member contracts; each contract has up to ``SLOTS`` covered
people: slot 0 is the subscriber, slot 1 a spouse, slots 2+ children. Days are
int32 numbers of days since 1970-01-01 (``NO_DAY`` when absent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.synthetic import calibration as cal
from features.synthetic.records import NO_DAY
from nba import vocab

SLOTS = 8
SUBSCRIBER, SPOUSE = 0, 1
CHILD_SLOTS = slice(2, SLOTS)
YEAR = 365.25

STATUS = {name: i for i, name in enumerate(vocab.STATUSES)}
MARITAL = {name: i for i, name in enumerate(vocab.MARITAL_STATUSES)}
WORKING = np.array([STATUS["employee_group"], STATUS["self_employed"], STATUS["civil_servant"]])

REGION_WEIGHTS = np.array(
    [12.0, 4.2, 5.0, 3.8, 0.5, 8.2, 8.8, 18.3, 4.9, 9.1, 9.0, 5.7, 7.6, 3.2]
)  # order of vocab.REGION_NAMES (INSEE population shares)
REGION_WEIGHTS = REGION_WEIGHTS / REGION_WEIGHTS.sum()
DEPARTMENTS = [d for r in vocab.REGION_NAMES for d in vocab.REGIONS[r]]
DEPT_REGION = np.array([i for i, r in enumerate(vocab.REGION_NAMES) for _ in vocab.REGIONS[r]])
REGION_FIRST_DEPT = np.cumsum([0] + [len(vocab.REGIONS[r]) for r in vocab.REGION_NAMES])


@dataclass
class Calendar:
    """Calendar months of the simulated window; the last may end at the extract date."""

    month_starts: np.ndarray  # (M,) first day of each month
    month_ends: np.ndarray  # (M,) day after the last simulated day of each month
    month_numbers: np.ndarray  # (M,) 1..12
    years: np.ndarray  # (M,)

    @property
    def start(self) -> int:
        return int(self.month_starts[0])

    @property
    def end(self) -> int:
        """Day after the extract date."""
        return int(self.month_ends[-1])

    @classmethod
    def ending(cls, extract_date: np.datetime64, months: int) -> Calendar:
        last = np.datetime64(str(extract_date)[:7], "M")
        firsts = np.arange(last - months + 1, last + 1).astype("datetime64[D]")
        nexts = (np.arange(last - months + 2, last + 2)).astype("datetime64[D]")
        ends = nexts.copy()
        ends[-1] = np.datetime64(str(extract_date)[:10], "D") + 1
        epoch = np.datetime64("1970-01-01", "D")
        return cls(
            month_starts=(firsts - epoch).astype(np.int32),
            month_ends=(ends - epoch).astype(np.int32),
            month_numbers=(firsts.astype("datetime64[M]").astype(int) % 12 + 1),
            years=firsts.astype("datetime64[Y]").astype(int) + 1970,
        )


def days_to_years(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.float64) / YEAR


def draw_ages(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """Ages from France's pyramid restricted to [low, high)."""
    bands = cal.PYRAMID_BANDS
    weights = cal.PYRAMID_SHARES * ((bands + 5 > low) & (bands < high))
    band = rng.choice(bands.size, size=n, p=weights / weights.sum())
    age = bands[band] + rng.random(n) * 5.0
    return np.clip(age, low, high - 1e-3)


def postcodes(rng: np.random.Generator, dept: np.ndarray) -> np.ndarray:
    """Random postcodes (5 characters) inside each département."""
    out = np.empty(dept.size, dtype=object)
    for i, d in enumerate(dept):
        code = DEPARTMENTS[d]
        digits = 5 - len(code)
        out[i] = code + str(int(rng.integers(0, 10**digits))).zfill(digits)
    return out


def draw_departments(rng: np.random.Generator, n: int) -> np.ndarray:
    region = rng.choice(REGION_WEIGHTS.size, size=n, p=REGION_WEIGHTS)
    size = REGION_FIRST_DEPT[region + 1] - REGION_FIRST_DEPT[region]
    return REGION_FIRST_DEPT[region] + (rng.random(n) * size).astype(int)


class Block:
    """Mutable state of ``n`` households, advanced month by month by ``simulate``."""

    def __init__(self, rng: np.random.Generator, first_member_id: int, n: int, cal_: Calendar):
        self.rng, self.n, self.calendar = rng, n, cal_
        self.member_id = np.arange(first_member_id, first_member_id + n, dtype=np.int64)
        shape = (n, SLOTS)
        self.exists = np.zeros(shape, dtype=bool)
        self.bid = np.zeros(shape, dtype=np.int64)
        self.birth = np.full(shape, NO_DAY, dtype=np.int32)
        self.sex = np.zeros(shape, dtype=np.int8)  # 0 = F, 1 = M
        self.rec = np.full(shape, -1, dtype=np.int64)  # index of the beneficiary record
        self.next_bid = np.ones(n, dtype=np.int64)
        day_fields = ("chronic", "dental", "dental_prev", "eye", "mammo", "colo", "cerv",
                      "hearing", "hosp", "prev_check", "support")  # fmt: skip
        self.last = {f: np.full(shape, NO_DAY, dtype=np.int32) for f in day_fields}
        self.flu_season = np.full(shape, -1, dtype=np.int32)
        self.diligence = rng.normal(0.0, 1.0, shape)
        self._init_beneficiary_records()
        self._init_members()
        self._init_households()
        self._init_person_history()

    # --- beneficiary records -------------------------------------------------------

    def _init_beneficiary_records(self) -> None:
        cap = self.n * SLOTS * 3
        self.b_member = np.zeros(cap, dtype=np.int64)
        self.b_id = np.zeros(cap, dtype=np.int64)
        self.b_role = np.zeros(cap, dtype=np.int8)
        self.b_birth = np.zeros(cap, dtype=np.int32)
        self.b_sex = np.zeros(cap, dtype=np.int8)
        self.b_start = np.zeros(cap, dtype=np.int32)
        self.b_end = np.full(cap, NO_DAY, dtype=np.int32)
        self.b_end_reason = np.full(cap, -1, dtype=np.int8)
        self.b_count = 0

    def add_people(
        self,
        idx: np.ndarray,
        slot: np.ndarray,
        birth: np.ndarray,
        sex: np.ndarray,
        start: np.ndarray,
    ) -> np.ndarray:
        """Cover new people in (idx, slot); returns their beneficiary ids."""
        k = idx.size
        if k == 0:
            return np.empty(0, dtype=np.int64)
        if self.b_count + k > self.b_member.size:
            self._grow_records(self.b_count + k)
        rows = np.arange(self.b_count, self.b_count + k)
        self.b_count += k
        bid = self.member_id[idx] * 100 + self.next_bid[idx]
        np.add.at(self.next_bid, idx, 1)  # idx is unique within one call
        role = np.minimum(slot, 2)
        self.b_member[rows], self.b_id[rows], self.b_role[rows] = idx, bid, role
        self.b_birth[rows], self.b_sex[rows], self.b_start[rows] = birth, sex, start
        self.exists[idx, slot] = True
        self.bid[idx, slot], self.birth[idx, slot], self.sex[idx, slot] = bid, birth, sex
        self.rec[idx, slot] = rows
        for f in self.last.values():
            f[idx, slot] = NO_DAY
        self.flu_season[idx, slot] = -1
        self.diligence[idx, slot] = self.rng.normal(0.0, 1.0, k)
        return bid

    def end_people(self, idx: np.ndarray, slot: np.ndarray, day: np.ndarray, reason: int) -> None:
        """End coverage of the people in (idx, slot) on ``day`` (exclusive)."""
        keep = self.exists[idx, slot]
        idx, slot = idx[keep], slot[keep]
        day = np.broadcast_to(day, keep.shape)[keep]
        rows = self.rec[idx, slot]
        self.b_end[rows] = np.maximum(day, self.b_start[rows])
        self.b_end_reason[rows] = reason
        self.exists[idx, slot] = False

    def _grow_records(self, need: int) -> None:
        cap = max(need, 2 * self.b_member.size)
        for name in ("b_member", "b_id", "b_role", "b_birth", "b_sex", "b_start", "b_end",
                     "b_end_reason"):  # fmt: skip
            old = getattr(self, name)
            fill = NO_DAY if name == "b_end" else (-1 if name == "b_end_reason" else 0)
            new = np.full(cap, fill, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    # --- members ---------------------------------------------------------------------

    def _init_members(self) -> None:
        rng, n, start = self.rng, self.n, self.calendar.start
        window_years = (self.calendar.end - start) / YEAR
        newcomer = rng.random(n) < min(0.045 * window_years, 0.3)
        first_job = newcomer & (rng.random(n) < 0.4)
        join = np.where(
            newcomer,
            start + (rng.random(n) * (self.calendar.end - start - 1)).astype(np.int32),
            start,
        ).astype(np.int32)
        age_at_join = np.where(first_job, 21 + rng.random(n) * 6, draw_ages(rng, n, 18, 100))
        weights_young = np.where(age_at_join < 25, 0.55, 1.0)  # fewer subscribers under 25
        redraw = rng.random(n) > weights_young
        age_at_join = np.where(redraw & ~first_job, draw_ages(rng, n, 25, 100), age_at_join)
        birth = (join - age_at_join * YEAR).astype(np.int32)
        tenure = np.minimum(rng.exponential(11.0, n), age_at_join - 18.0) * YEAR
        self.join = np.where(newcomer, join, start - np.maximum(tenure, 31)).astype(np.int32)
        self.newcomer, self.first_job = newcomer, first_job
        self.end = np.full(n, NO_DAY, dtype=np.int32)
        self.end_reason = np.full(n, -1, dtype=np.int8)
        sex = (rng.random(n) < 0.48).astype(np.int8)
        self.retire_age = np.where(
            rng.random(n) < cal.RETIREMENT_EARLY_SHARE,
            55.0 + rng.random(n) * 5.0,
            np.clip(rng.normal(cal.RETIREMENT_MEAN_AGE, 1.4, n), 60.0, 69.5),
        )
        age0 = (start - birth) / YEAR
        self.status = self._initial_status(age0, first_job)
        employed = self.status == STATUS["employee_group"]
        collective = first_job | (rng.random(n) < 0.92)
        self.contract = np.where(employed & collective, 1, 0).astype(np.int8)
        p_formula = np.where(self.contract[:, None] == 1, [[0.10, 0.35, 0.35, 0.20]],
                             [[0.24, 0.36, 0.28, 0.12]])  # fmt: skip
        self.formula = (1 + (rng.random(n)[:, None] > np.cumsum(p_formula, axis=1)).sum(1)).astype(np.int8)
        self.formula = np.minimum(self.formula, 4)
        self.dept = draw_departments(rng, n)
        self.postcode = postcodes(rng, self.dept)
        self.marital = np.full(n, MARITAL["single"], dtype=np.int8)
        self.vulnerable = rng.random(n) < np.where(age0 > 85, 0.15, 0.025)
        p_online = np.clip(0.62 - 0.006 * (age0 - 25), 0.08, 0.62)
        has_online = rng.random(n) < p_online
        self.online = np.where(
            has_online,
            np.maximum(self.join, start - (rng.random(n) * 6 * YEAR).astype(int)),
            NO_DAY,
        ).astype(np.int32)
        self.responsive = rng.normal(0.0, 0.1, n)
        moments = ("birth", "marriage", "separation", "move", "child18", "spouse_death")
        self.moment = {m: np.full(n, NO_DAY, dtype=np.int32) for m in moments}
        self.holding = np.full((n, len(vocab.PRODUCTS)), NO_DAY, dtype=np.int32)
        self._init_holdings(age0)
        idx = np.arange(n)
        self.add_people(idx, np.zeros(n, dtype=int), birth, sex, self.join)
        self.version_from = self.join.copy()

    def _initial_status(self, age: np.ndarray, first_job: np.ndarray) -> np.ndarray:
        rng, n = self.rng, age.size
        young = rng.choice([3, 0, 4, 1], size=n, p=[0.40, 0.45, 0.10, 0.05])
        adult = rng.choice([0, 2, 1, 4, 3], size=n, p=[0.62, 0.15, 0.13, 0.08, 0.02])
        status = np.where(age < 25, young, adult)
        status = np.where(age >= self.retire_age, STATUS["retired"], status)
        return np.where(first_job, STATUS["employee_group"], status).astype(np.int8)

    def _init_holdings(self, age: np.ndarray) -> None:
        rng, n, start = self.rng, self.n, self.calendar.start
        indiv = self.contract == 0
        p = {
            "prevoyance": np.where(indiv & (age < 60), 0.16, 0.05),
            "retirement_savings": np.where((age > 40) & (age < 66), 0.13, 0.03),
            "home_insurance": np.full(n, 0.17),
            "auto_insurance": np.full(n, 0.12),
            "long_term_care": np.where(age > 58, 0.07, 0.01),
            "funeral_cover": np.where(age > 62, 0.10, 0.01),
        }
        for j, product in enumerate(vocab.PRODUCTS):
            has = (rng.random(n) < p[product]) & ~self.first_job
            since = np.maximum(self.join, start - (rng.random(n) * 8 * YEAR).astype(int))
            self.holding[:, j] = np.where(has, since, NO_DAY)

    def _init_households(self) -> None:
        rng, n = self.rng, self.n
        age = np.maximum((self.join - self.birth[:, 0]) / YEAR, 18)
        band = np.digitize(age, [25, 35, 50, 65])
        # alone, couple, couple with children, single parent (INSEE households by age)
        table = np.array(
            [[0.68, 0.20, 0.09, 0.03], [0.22, 0.22, 0.48, 0.08], [0.12, 0.09, 0.64, 0.15],
             [0.27, 0.42, 0.25, 0.06], [0.40, 0.58, 0.01, 0.01]]
        )  # fmt: skip
        kind = (rng.random(n)[:, None] > np.cumsum(table[band], axis=1)).sum(1)
        kind = np.where(self.first_job, np.where(rng.random(n) < 0.85, 0, 1), kind)
        couple = (kind == 1) | (kind == 2)
        idx = np.flatnonzero(couple)
        spouse_age = np.maximum(age[idx] + rng.normal(0, 3.5, idx.size), 18.5)
        spouse_sex = np.where(rng.random(idx.size) < 0.96, 1 - self.sex[idx, 0], self.sex[idx, 0])
        self.add_people(idx, np.full(idx.size, SPOUSE), (self.join[idx] - spouse_age * YEAR).astype(
            np.int32), spouse_sex.astype(np.int8), self.join[idx])  # fmt: skip
        married = rng.random(idx.size) < np.where(age[idx] > 45, 0.85, 0.6)
        pacs = rng.random(idx.size) < 0.35
        self.marital[idx] = np.where(
            married, np.where(pacs, MARITAL["pacsed"], MARITAL["married"]), MARITAL["single"]
        )
        alone_old = (kind == 0) & (age > 45)
        status_alone = rng.choice([MARITAL["separated"], MARITAL["widowed"], MARITAL["single"]],
                                  size=n, p=[0.45, 0.25, 0.30])  # fmt: skip
        widow_p = np.clip((age - 55) / 30, 0, 0.8)
        status_alone = np.where(rng.random(n) < widow_p, MARITAL["widowed"], status_alone)
        self.marital = np.where(alone_old | (kind == 3), status_alone, self.marital).astype(np.int8)
        self._init_children(np.flatnonzero(kind >= 2), age)

    def _init_children(self, idx: np.ndarray, parent_age: np.ndarray) -> None:
        rng = self.rng
        count = rng.choice([1, 2, 3, 4], size=idx.size, p=[0.30, 0.44, 0.20, 0.06])
        max_age = np.minimum(parent_age[idx] - 19.0, 25.0)
        youngest = rng.random(idx.size) * np.maximum(max_age, 0.1)
        for k in range(4):
            has = (count > k) & (max_age > 0)
            child_age = youngest + k * (1.2 + rng.random(idx.size) * 3.0)
            covered = has & (child_age < max_age + 0.5)
            # children over 18 have often left the contract already
            covered &= (child_age < 18) | (rng.random(idx.size) < 0.55 - 0.08 * (child_age - 18))
            sel = idx[covered]
            join = self.join[sel]
            birth = (join - child_age[covered] * YEAR).astype(np.int32)
            start = np.maximum(join, birth)
            sex = (rng.random(sel.size) < 0.51).astype(np.int8)
            self.add_people(sel, np.full(sel.size, 2 + k), birth, sex, start)

    def _init_person_history(self) -> None:
        """Plausible last-care dates before the window, so the first months look settled."""
        rng, start = self.rng, self.calendar.start
        shape = self.exists.shape
        age = (start - self.birth) / YEAR
        z = self.diligence

        def ago(mean_years: np.ndarray | float) -> np.ndarray:
            return (start - rng.exponential(1.0, shape) * mean_years * YEAR).astype(np.int32)

        self.last["dental"] = ago(np.exp(-0.5 * z) * 1.3)
        self.last["dental_prev"] = self.last["dental"] - (
            rng.exponential(1.0, shape) * np.exp(-0.5 * z) * 1.3 * YEAR
        ).astype(np.int32)
        self.last["eye"] = ago(np.exp(-0.4 * z) * 2.2)
        for f in ("mammo", "colo", "cerv", "hearing"):
            self.last[f] = ago(np.exp(-0.8 * z) * 2.5)
        season = int(self.calendar.years[0]) - (1 if self.calendar.month_numbers[0] < 10 else 0)
        flu_p = np.where((age >= 65) & (z > -0.1), 0.75, 0.1)
        self.flu_season = np.where(rng.random(shape) < flu_p, season - 1, -1).astype(np.int32)
        prevalence = np.interp(age, cal.AGE_KNOTS, cal.CHRONIC_PREVALENCE_KNOTS)
        chronic = rng.random(shape) < prevalence
        self.last["chronic"] = np.where(chronic, ago(6.0), NO_DAY).astype(np.int32)
        for f, arr in self.last.items():
            if f != "chronic":
                arr[:] = np.maximum(arr, self.birth)
        self.last["chronic"] = np.where(self.exists, self.last["chronic"], NO_DAY).astype(np.int32)

    # --- derived views -----------------------------------------------------------------

    def age(self, day: int) -> np.ndarray:
        """Age in years of every slot on ``day`` (garbage where no one is covered)."""
        return (day - self.birth) / YEAR

    def active(self, day: int) -> np.ndarray:
        """Members whose membership is in force on ``day``."""
        return (self.join <= day) & ((self.end == NO_DAY) | (self.end > day))
