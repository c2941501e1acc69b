"""Claim lines: routine care, hospital stays, maternity and prevention acts, with who paid."""

from __future__ import annotations

import numpy as np

from features.synthetic import calibration as cal
from features.synthetic.records import NO_DAY, Rows
from features.synthetic.state import YEAR, Block
from nba import vocab

CATEGORY = {c: i for i, c in enumerate(vocab.CARE_CATEGORIES)}
ACT = {a: i for i, a in enumerate(vocab.ALL_ACTS)}
OOP_CATEGORIES = np.array([CATEGORY["dental"], CATEGORY["optical"], CATEGORY["hearing"]])

SS_BY_CATEGORY = np.array([cal.SOCIAL_SECURITY_SHARE[c] for c in vocab.CARE_CATEGORIES])
SS_BY_ACT = np.full(len(vocab.ALL_ACTS), np.nan)
for _act, _share in cal.SOCIAL_SECURITY_SHARE_BY_ACT.items():
    SS_BY_ACT[ACT[_act]] = _share
MUTUELLE_SHARE = np.array(
    [cal.MUTUELLE_SHARE_OF_REST.get(c, cal.MUTUELLE_SHARE_OF_REST["default"])
     for c in vocab.CARE_CATEGORIES]
)  # fmt: skip

FOLLOW_UP_DAYS = {"care": (7, 30), "prosthesis": (30, 90), "optical": (5, 40), "hearing_aid": (20, 60)}
"""Days after the act within which a follow-up line falls (uniformly, upper bound excluded)."""
FOLLOW_UPS: dict[str, tuple[tuple[float, tuple[int, int]], ...]] = {
    "dental_checkup": ((cal.DENTAL_CARE[0], FOLLOW_UP_DAYS["care"]),
                       (cal.DENTAL_PROSTHESIS[0], FOLLOW_UP_DAYS["prosthesis"])),
    "eye_exam": ((cal.OPTICAL_AFTER_EXAM[0], FOLLOW_UP_DAYS["optical"]),),
    "hearing_check": ((cal.HEARING_AID_AFTER_TEST[0], FOLLOW_UP_DAYS["hearing_aid"]),),
}  # fmt: skip
"""Per prevention action: (probability, days) of each line that may follow it."""

CHRONIC_EXPECTED = cal.population_mean(cal.CHRONIC_PREVALENCE_KNOTS) * 12 * cal.CHRONIC_MONTHLY_COST
EYE_EXAMS_EXPECTED = 0.28  # ophthalmologist visits per person-year, counted in 'specialist'


GYNECOLOGY: dict[str, object] = {"sigma": 0.5, "acts": {"gynecologist": 1.0}}


def routine_mean_cost(category: str) -> float:
    """Mean cost of a routine line so that spend per person matches CALIBRATION.md."""
    rate = float(cal.ROUTINE[category]["rate"])  # type: ignore[arg-type]
    spend = cal.SPEND_PER_PERSON.get(category, 25.0 * rate)
    if category == "pharmacy":
        spend -= CHRONIC_EXPECTED
    if category == "specialist":
        spend -= EYE_EXAMS_EXPECTED * cal.EYE_EXAM_COST
    return spend / rate


def lognormal(rng: np.random.Generator, mean: float | np.ndarray, sigma: float, k: int) -> np.ndarray:
    return np.asarray(mean) * np.exp(rng.normal(-0.5 * sigma * sigma, sigma, k))


class ClaimBook:
    """Collects claim lines for one block; splits each cost between payers when it is emitted."""

    def __init__(self, block: Block, start_day: int, end_day: int):
        self.b, self.start_day, self.end_day, self.rng = block, start_day, end_day, block.rng
        self.rows = Rows()
        self.oop_acc = np.zeros(block.n)
        self._profile_means = {c: cal.population_mean(cal.AGE_PROFILE[c]) for c in cal.AGE_PROFILE}

    def emit(
        self, idx: np.ndarray, slot: np.ndarray, day: np.ndarray, category: str,
        act: np.ndarray | str, cost: np.ndarray, ss_share: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Record lines for people (idx, slot) on ``day``; lines outside the extract window
        (before its first month, or not yet known at its end) are dropped."""
        b = self.b
        slot = np.broadcast_to(slot, idx.shape)
        keep = (day < self.end_day) & (day >= b.join[idx]) & (day >= self.start_day)
        if not keep.all():
            idx, slot, day, cost = idx[keep], slot[keep], day[keep], cost[keep]
            act = act if isinstance(act, str) else act[keep]
            ss_share = None if ss_share is None else ss_share[keep]
        k = idx.size
        if k == 0:
            return
        cat = CATEGORY[category]
        act_code = np.full(k, ACT[act]) if isinstance(act, str) else act
        total = np.round(np.maximum(cost, 1.0), 2)
        if ss_share is None:
            by_act = SS_BY_ACT[act_code]
            ss_share = np.where(np.isnan(by_act), SS_BY_CATEGORY[cat], by_act)
        ss = np.round(total * ss_share, 2)
        rest = total - ss
        mut = np.round(rest * MUTUELLE_SHARE[cat][b.formula[idx] - 1], 2)
        oop = np.round(total - ss - mut, 2)
        if cat in OOP_CATEGORIES:
            np.add.at(self.oop_acc, idx, oop)
        self.rows.add(
            member=idx, bid=b.bid[idx, slot], day=day.astype(np.int32),
            category=np.full(k, cat, dtype=np.int8), act=act_code.astype(np.int16),
            total=total, ss=ss, mut=mut, oop=oop,
        )  # fmt: skip

    def month_oop(self) -> np.ndarray:
        """Household out-of-pocket on dental, optical and hearing emitted this month."""
        out, self.oop_acc = self.oop_acc, np.zeros(self.b.n)
        return out

    # --- routine care ------------------------------------------------------------------------

    def covered_people(self, d0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(idx, slot, first covered day this month) of everyone covered in the month."""
        b = self.b
        active = b.active(d0) | ((b.join > d0) & (b.join < d0 + 31))
        idx, slot = np.nonzero(b.exists & active[:, None])
        start = np.maximum(b.b_start[b.rec[idx, slot]], d0)
        return idx, slot, start

    def routine(self, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        idx, slot, lo = self.covered_people(d0)
        ok = lo < d1
        idx, slot, lo = idx[ok], slot[ok], lo[ok]
        span = (d1 - lo) / (d1 - d0)
        age = (d0 - b.birth[idx, slot]) / YEAR
        chronic = b.last["chronic"][idx, slot] != NO_DAY
        month = int((np.datetime64(d0, "D").astype("datetime64[M]").astype(int)) % 12 + 1)
        for category, spec in cal.ROUTINE.items():
            rate = float(spec["rate"]) * cal.age_curve(cal.AGE_PROFILE[category], age)  # type: ignore[arg-type]
            rate /= self._profile_means[category]
            season = 1.0 + float(spec["season"]) * np.cos(2 * np.pi * (month - 1) / 12)  # type: ignore[arg-type]
            rate *= season * span / 12 * np.where(chronic, 1.5, 0.9)
            if category == "specialist":
                rate = self._gynecology(idx, slot, lo, d1, rate, age)
            self._draw(idx, slot, lo, d1, rate, category, spec)
        self._chronic(idx, slot, lo, d1, chronic)
        profile = cal.age_curve(cal.AGE_PROFILE["hospital"], age) / self._profile_means["hospital"]
        rate = cal.DAY_HOSPITAL_PER_YEAR / 12 * profile * span
        n = rng.poisson(rate)
        rows = np.repeat(np.arange(idx.size), n)
        cost = lognormal(rng, cal.DAY_HOSPITAL_COST, 0.6, rows.size)
        self.emit(idx[rows], slot[rows], self._days(lo[rows], d1), "hospital", "day_hospital", cost)

    def _gynecology(
        self, idx: np.ndarray, slot: np.ndarray, lo: np.ndarray, d1: int, rate: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        """Draw the gynaecological follow-ups out of the specialist visits ``rate`` (women aged
        18-69, more often the more diligent they are, a mean-one factor) and return the rate
        of the other specialist visits."""
        b = self.b
        women = (b.sex[idx, slot] == 0) & (age >= 18) & (age < 70)
        k = cal.GYNECOLOGY_DILIGENCE
        regular = np.exp(k * b.diligence[idx, slot] - k * k / 2)
        follow_up = rate * women * regular * (cal.GYNECOLOGY_SHARE / cal.ADULT_WOMEN_SHARE)
        self._draw(idx, slot, lo, d1, follow_up, "specialist", GYNECOLOGY)
        return rate * (1 - cal.GYNECOLOGY_SHARE)

    def _draw(
        self, idx: np.ndarray, slot: np.ndarray, lo: np.ndarray, d1: int, rate: np.ndarray,
        category: str, spec: dict[str, object],
    ) -> None:  # fmt: skip
        rng = self.rng
        n = rng.poisson(rate)
        rows = np.repeat(np.arange(idx.size), n)
        acts = spec["acts"]
        assert isinstance(acts, dict)
        names = list(acts)
        choice = rng.choice(len(names), size=rows.size, p=np.array(list(acts.values())))
        act_codes = np.array([ACT[a] for a in names])[choice]
        cost = lognormal(rng, routine_mean_cost(category), float(spec["sigma"]), rows.size)  # type: ignore[arg-type]
        self.emit(idx[rows], slot[rows], self._days(lo[rows], d1), category, act_codes, cost)

    def _chronic(
        self, idx: np.ndarray, slot: np.ndarray, lo: np.ndarray, d1: int, chronic: np.ndarray
    ) -> None:
        started = self.b.last["chronic"][idx, slot] < d1
        sel = chronic & started
        day = np.maximum(self._days(lo[sel], d1), self.b.last["chronic"][idx[sel], slot[sel]])
        cost = lognormal(self.rng, cal.CHRONIC_MONTHLY_COST, 0.5, int(sel.sum()))
        self.emit(idx[sel], slot[sel], day, "pharmacy", "chronic_treatment", cost)

    def _days(self, lo: np.ndarray, d1: int) -> np.ndarray:
        return (lo + self.rng.random(lo.size) * (d1 - lo)).astype(np.int32)

    # --- events ------------------------------------------------------------------------------

    def hospital_stays(self, idx: np.ndarray, slot: np.ndarray, day: np.ndarray) -> None:
        cost = lognormal(self.rng, cal.HOSPITAL_STAY_COST, 1.0, idx.size)
        self.emit(idx, slot, day, "hospital", "stay", cost)

    def maternity(self, idx: np.ndarray, mother: np.ndarray, day: np.ndarray) -> None:
        rng = self.rng
        self.emit(idx, mother, day, "maternity", "delivery", lognormal(rng, 3200.0, 0.3, idx.size))
        for months_before in (2, 4, 6):
            before = (day - months_before * 30.44).astype(np.int32)
            ok = before >= self.b.b_start[self.b.rec[idx, mother]]
            self.emit(idx[ok], mother[ok], before[ok], "maternity", "prenatal",
                      lognormal(rng, 75.0, 0.3, int(ok.sum())))  # fmt: skip

    def prevention(self, action: str, idx: np.ndarray, slot: np.ndarray, day: np.ndarray) -> None:
        """The claim lines that show an action was done, and what follows it."""
        b, rng, k = self.b, self.rng, idx.size
        if k == 0:
            return
        later = lambda lo, hi: (day + rng.integers(lo, hi, k)).astype(np.int32)  # noqa: E731
        if action == "dental_checkup":
            self.emit(idx, slot, day, "dental", "checkup", lognormal(rng, cal.DENTAL_CHECKUP_COST, 0.2, k))
            self._follow_up(idx, slot, later(*FOLLOW_UP_DAYS["care"]), "dental", "care", *cal.DENTAL_CARE)
            self._follow_up(idx, slot, later(*FOLLOW_UP_DAYS["prosthesis"]), "dental", "prosthesis",
                            *cal.DENTAL_PROSTHESIS)  # fmt: skip
            b.last["dental_prev"][idx, slot] = b.last["dental"][idx, slot]
            b.last["dental"][idx, slot] = day
        elif action == "eye_exam":
            self.emit(
                idx,
                slot,
                day,
                "specialist",
                "ophthalmologist",
                lognormal(rng, cal.EYE_EXAM_COST, 0.2, k),
            )
            glasses = np.where(rng.random(k) < 0.8, ACT["glasses"], ACT["lenses"])
            p, mean = cal.OPTICAL_AFTER_EXAM
            go = rng.random(k) < p
            self.emit(idx[go], slot[go], later(*FOLLOW_UP_DAYS["optical"])[go], "optical", glasses[go],
                      lognormal(rng, mean, 0.5, int(go.sum())))  # fmt: skip
            b.last["eye"][idx, slot] = day
        elif action in SCREENING:
            act, field, cost = SCREENING[action]
            self.emit(idx, slot, day, "screening", act, lognormal(rng, cost, 0.1, k))
            b.last[field][idx, slot] = day
        elif action == "flu_vaccination":
            age = (day - b.birth[idx, slot]) / YEAR
            eligible = (age >= 65) | (b.last["chronic"][idx, slot] != NO_DAY)
            self.emit(idx, slot, day, "vaccination", "flu", lognormal(rng, 14.0, 0.1, k),
                      ss_share=np.where(eligible, 1.0, 0.65))  # fmt: skip
            years = day.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
            months = day.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12 + 1
            b.flu_season[idx, slot] = np.where(months >= 10, years, years - 1)
        elif action == "hearing_check":
            self.emit(
                idx,
                slot,
                day,
                "hearing",
                "hearing_test",
                lognormal(rng, cal.HEARING_TEST_COST, 0.2, k),
            )
            self._follow_up(idx, slot, later(*FOLLOW_UP_DAYS["hearing_aid"]), "hearing", "hearing_aid",
                            *cal.HEARING_AID_AFTER_TEST, sigma=0.3)  # fmt: skip
            b.last["hearing"][idx, slot] = day
        elif action == "prevention_checkup":
            self.emit(idx, slot, day, "prevention", "prevention_checkup", np.full(k, 30.0))
            b.last["prev_check"][idx, slot] = day
        elif action == "post_hospital_support":
            self.emit(idx, slot, day, "home_support", "post_hospital_support",
                      lognormal(rng, 260.0, 0.4, k))  # fmt: skip
            b.last["support"][idx, slot] = day

    def _follow_up(
        self, idx: np.ndarray, slot: np.ndarray, day: np.ndarray, category: str, act: str,
        p: float, mean: float, sigma: float = 0.5,
    ) -> None:  # fmt: skip
        go = self.rng.random(idx.size) < p
        self.emit(
            idx[go],
            slot[go],
            day[go],
            category,
            act,
            lognormal(self.rng, mean, sigma, int(go.sum())),
        )


SCREENING = {
    "breast_screening": ("mammography", "mammo", 70.0),
    "colorectal_screening": ("colorectal_test", "colo", 40.0),
    "cervical_screening": ("cervical_smear", "cerv", 45.0),
}
