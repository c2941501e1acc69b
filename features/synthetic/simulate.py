"""Advance a block of households month by month and record what an insurer sees."""

from __future__ import annotations

import numpy as np

from features.synthetic import behaviour as bh
from features.synthetic import calibration as cal
from features.synthetic import life
from features.synthetic.claims import ClaimBook
from features.synthetic.consent import ConsentBook
from features.synthetic.records import NO_DAY, Rows
from features.synthetic.state import (
    MARITAL,
    REGION_FIRST_DEPT,
    SPOUSE,
    STATUS,
    WORKING,
    YEAR,
    Block,
    Calendar,
    draw_departments,
    postcodes,
)
from nba import vocab

EVENT = {name: i for i, name in enumerate(vocab.LIFE_EVENTS)}
END_REASON = {name: i for i, name in enumerate(vocab.BENEFICIARY_END_REASONS)}
VERSIONED = ("dept", "postcode", "status", "marital", "contract", "formula", "online")
ACTION_INDEX = {a: i for i, a in enumerate(vocab.ACTION_IDS)}
PRODUCT_INDEX = {p: j for j, p in enumerate(vocab.PRODUCTS)}


class Simulation:
    """One block: state, the books it writes to, and the monthly step."""

    def __init__(self, rng: np.random.Generator, first_member_id: int, n: int, calendar: Calendar):
        self.rng = rng
        self.b = Block(rng, first_member_id, n, calendar)
        self.calendar = calendar
        self.claims = ClaimBook(self.b, calendar.start, calendar.end)
        self.consent = ConsentBook(self.b, rng)
        self.events = Rows()
        self.versions = Rows()
        self.holdings = Rows()
        self.interactions = Rows()
        self.truth = Rows()
        self.changes: list[tuple[int, int, str, object]] = []
        self.snapshot = {f: getattr(self.b, f).copy() for f in VERSIONED}
        self.oop = np.zeros((n, 12))
        self.pending: dict[str, np.ndarray] = {}
        self._record_joins()

    # --- bookkeeping ----------------------------------------------------------------------

    def event(self, idx: np.ndarray, slot: np.ndarray | int, name: str, day: np.ndarray) -> None:
        slot_arr = np.broadcast_to(slot, idx.shape)
        self.events.add(
            member=idx, bid=self.b.bid[idx, slot_arr], event=np.full(idx.size, EVENT[name]), day=day
        )

    def change(self, idx: np.ndarray, day: np.ndarray, attr: str, values: np.ndarray | np.generic) -> None:
        """Change a versioned member attribute from ``day`` on (a new members row)."""
        getattr(self.b, attr)[idx] = values
        days = np.broadcast_to(day, idx.shape)
        vals = np.broadcast_to(values, idx.shape)
        self.changes.extend(zip(idx.tolist(), days.tolist(), [attr] * idx.size, vals.tolist(), strict=True))

    def flush_versions(self) -> None:
        """Close the open version of every member that changed this month, in day order."""
        self.changes.sort(key=lambda c: (c[0], c[1]))
        frm = self.b.version_from
        rows: list[tuple[int, int, int]] = []
        closed_attrs: dict[str, list[object]] = {f: [] for f in VERSIONED}
        for i, day, attr, value in self.changes:
            if day > frm[i]:
                rows.append((i, int(frm[i]), day))
                for f in VERSIONED:
                    closed_attrs[f].append(self.snapshot[f][i])
                frm[i] = day
            self.snapshot[attr][i] = value
        self.changes.clear()
        if rows:
            arr = np.array(rows, dtype=np.int64)
            self.versions.add(
                member=arr[:, 0], valid_from=arr[:, 1], valid_to=arr[:, 2],
                **{f: np.array(v, dtype=self.snapshot[f].dtype) for f, v in closed_attrs.items()},
            )  # fmt: skip

    def _record_joins(self) -> None:
        b = self.b
        idx = np.flatnonzero(b.newcomer)
        self.event(idx, 0, "new_member", b.join[idx])
        fj = np.flatnonzero(b.first_job)
        self.event(fj, 0, "first_job", b.join[fj])
        self.consent.initial(b.join, self.calendar.start)

    # --- the month ------------------------------------------------------------------------

    def run(self) -> None:
        cal_ = self.calendar
        for t in range(cal_.month_starts.size):
            self.step(t, int(cal_.month_starts[t]), int(cal_.month_ends[t]))
        self.finish()

    def day_in(self, k: int, d0: int, d1: int) -> np.ndarray:
        return (d0 + (self.rng.random(k) * (d1 - d0))).astype(np.int32)

    def step(self, t: int, d0: int, d1: int) -> None:
        b = self.b
        self.record_truth(t, d0)
        # memberships that end this month end first, so nothing later in the month (a spouse's
        # death, a birth, a move) is dated after the membership it belongs to
        self.terminations(b.active(d0) & (b.end == NO_DAY), d0, d1)
        self.deaths(np.flatnonzero(b.active(d0) & (b.end == NO_DAY)), d0, d1)
        active = np.flatnonzero(b.active(d0) & (b.end == NO_DAY))
        self.births(active, d0, d1)
        self.couples(active, d0, d1)
        self.children(active, d0, d1)
        self.moves(active, d0, d1)
        self.careers(active, d0, d1)
        self.online_accounts(active, d0, d1)
        self.hospital_and_chronic(active, d0, d1)
        self.consent.monthly(active, d0, d1)
        self.actions(t, active, d0, d1)
        self.claims.routine(d0, d1)
        self.holding_lapses(active, d0, d1)
        self.oop[:, t % 12] = self.claims.month_oop()
        self.flush_versions()

    # --- life -----------------------------------------------------------------------------

    def deaths(self, active: np.ndarray, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        q = life.death_rate(b.age(d0)[active, :2])
        dies = (rng.random(q.shape) < q) & b.exists[active, :2]
        day = self.day_in(active.size, d0, d1)
        spouse = active[dies[:, 1] & ~dies[:, 0]]
        sday = day[dies[:, 1] & ~dies[:, 0]]
        self.event(spouse, SPOUSE, "death", sday)
        self.event(spouse, 0, "spouse_death", sday)
        b.end_people(spouse, np.full(spouse.size, SPOUSE), sday, END_REASON["death"])
        b.moment["spouse_death"][spouse] = sday
        self.change(spouse, sday, "marital", np.int8(MARITAL["widowed"]))
        members = active[dies[:, 0]]
        self.event(members, 0, "death", day[dies[:, 0]])
        self.end_membership(members, day[dies[:, 0]], reason="death")

    def end_membership(self, idx: np.ndarray, day: np.ndarray, reason: str) -> None:
        b = self.b
        b.end[idx] = np.maximum(day, b.join[idx] + 1)
        b.end_reason[idx] = vocab.MEMBER_END_REASONS.index(reason)
        first = END_REASON["death"] if reason == "death" else END_REASON["member_left"]
        b.end_people(idx, np.zeros(idx.size, dtype=int), b.end[idx], first)
        for s in range(1, b.exists.shape[1]):
            b.end_people(idx, np.full(idx.size, s), b.end[idx], END_REASON["member_left"])
        for j in range(len(vocab.PRODUCTS)):
            self.close_holdings(idx, j, b.end[idx])

    def terminations(self, mask: np.ndarray, d0: int, d1: int) -> None:
        rate = life.termination_rate(self.b.age(d0)[:, 0])
        leave = np.flatnonzero(mask & (self.rng.random(mask.size) < rate))
        self.end_membership(leave, self.day_in(leave.size, d0, d1), reason="termination")

    def births(self, active: np.ndarray, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        women = (b.sex[active, :2] == 0) & b.exists[active, :2]
        rate = life.birth_rates(b, active, d0)
        mother = women & (rng.random(rate.shape) < rate)
        has = mother.any(axis=1)
        free = ~b.exists[active, 2:]
        has &= free.any(axis=1)
        idx, mslot = active[has], mother[has].argmax(axis=1)
        slot = 2 + free[has].argmax(axis=1)
        day = self.day_in(idx.size, d0, d1)
        adopted = rng.random(idx.size) < 0.03
        birth = np.where(adopted, day - (1 + rng.random(idx.size) * 5) * YEAR, day).astype(np.int32)
        sex = (rng.random(idx.size) < 0.51).astype(np.int8)
        b.add_people(idx, slot, birth, sex, day)
        self.event(idx[~adopted], slot[~adopted], "birth", day[~adopted])
        self.event(idx[adopted], slot[adopted], "adoption", day[adopted])
        b.moment["birth"][idx] = day
        born = ~adopted
        self.claims.maternity(idx[born], mslot[born], day[born])

    def couples(self, active: np.ndarray, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        age = b.age(d0)[active, 0]
        single = ~b.exists[active, SPOUSE]
        form = single & (rng.random(active.size) < life.forming_couple(age, single))
        idx = active[form]
        day = self.day_in(idx.size, d0, d1)
        spouse_age = np.maximum(age[form] + rng.normal(0, 3.5, idx.size), 18.5)
        sex = np.where(rng.random(idx.size) < 0.96, 1 - b.sex[idx, 0], b.sex[idx, 0]).astype(np.int8)
        b.add_people(idx, np.full(idx.size, SPOUSE), (day - spouse_age * YEAR).astype(np.int32), sex,
                     day)  # fmt: skip
        marry_now = rng.random(idx.size) < life.MARRY_WHEN_FORMING
        self.marry(idx[marry_now], day[marry_now])
        moving = rng.random(idx.size) < life.MOVE_WHEN_FORMING
        self.move(idx[moving], day[moving])
        couple = b.exists[active, SPOUSE]
        weds = active[~form & (rng.random(active.size) < life.wedding(couple, b.marital[active]))]
        self.marry(weds, self.day_in(weds.size, d0, d1))
        formal = life.formal(b.marital[active])
        split = ~form & (rng.random(active.size) < life.separating(couple, b.marital[active]))
        idx, day = active[split], self.day_in(int(split.sum()), d0, d1)
        self.event(idx, 0, "separation", day)
        b.end_people(idx, np.full(idx.size, SPOUSE), day, END_REASON["separation"])
        b.moment["separation"][idx] = day
        was_formal = formal[split]
        self.change(idx[was_formal], day[was_formal], "marital", np.int8(MARITAL["separated"]))
        moving = rng.random(idx.size) < life.MOVE_WHEN_SEPARATING
        self.move(idx[moving], day[moving])

    def marry(self, idx: np.ndarray, day: np.ndarray) -> None:
        pacs = self.rng.random(idx.size) < 0.45
        self.change(idx, day, "marital",
                    np.where(pacs, MARITAL["pacsed"], MARITAL["married"]).astype(np.int8))  # fmt: skip
        self.event(idx, 0, "marriage", day)
        self.b.moment["marriage"][idx] = day

    def children(self, active: np.ndarray, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        kids = b.exists[active, 2:]
        birth18 = b.birth[active, 2:].astype(np.int64) + int(18 * YEAR)
        turns = kids & (birth18 >= d0) & (birth18 < d1)
        rows, cols = np.nonzero(turns)
        self.event(active[rows], 2 + cols, "child_turns_18", birth18[rows, cols].astype(np.int32))
        b.moment["child18"][active[rows]] = birth18[rows, cols]
        age = b.age(d0)[active, 2:]
        rate = np.select([age < 18, age < 21, age < 26], [0.0, 0.018, 0.028], 1.0)
        leave = kids & (rng.random(rate.shape) < rate)
        rows, cols = np.nonzero(leave)
        idx, slot = active[rows], 2 + cols
        day = self.day_in(idx.size, d0, d1)
        day = np.maximum(day, b.birth[idx, slot] + int(18 * YEAR)).astype(np.int32)
        self.event(idx, slot, "child_leaves_contract", day)
        b.end_people(idx, slot, day, END_REASON["left_contract"])

    def moves(self, active: np.ndarray, d0: int, d1: int) -> None:
        rate = life.move_rate(self.b.age(d0)[active, 0])
        idx = active[self.rng.random(active.size) < rate]
        self.move(idx, self.day_in(idx.size, d0, d1))

    def move(self, idx: np.ndarray, day: np.ndarray) -> None:
        b, rng = self.b, self.rng
        if idx.size == 0:
            return
        far = rng.random(idx.size) < 0.25
        dept = np.where(far, draw_departments(rng, idx.size), b.dept[idx])
        region = np.searchsorted(REGION_FIRST_DEPT, dept, side="right") - 1
        size = REGION_FIRST_DEPT[region + 1] - REGION_FIRST_DEPT[region]
        near = ~far & (rng.random(idx.size) < 0.4)
        dept = np.where(near, REGION_FIRST_DEPT[region] + (rng.random(idx.size) * size).astype(int),
                        dept)  # fmt: skip
        code = postcodes(rng, dept)
        same = code == b.postcode[idx]
        code[same] = [c[:-1] + str((int(c[-1]) + 1) % 10) for c in code[same]]
        self.change(idx, day, "dept", dept)
        self.change(idx, day, "postcode", code)
        self.event(idx, 0, "move", day)
        b.moment["move"][idx] = day

    def careers(self, active: np.ndarray, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        age0, age1 = b.age(d0)[active, 0], b.age(d1)[active, 0]
        status = b.status[active]
        retires = (age0 < b.retire_age[active]) & (age1 >= b.retire_age[active])
        retires &= status != STATUS["retired"]
        retires |= (status != STATUS["retired"]) & (age0 >= 70)
        idx = active[retires]
        day = np.clip(b.birth[idx, 0] + (b.retire_age[idx] * YEAR).astype(np.int64), d0, d1 - 1)
        self.change(idx, day, "status", np.int8(STATUS["retired"]))
        self.change(idx[b.contract[idx] == 1], day[b.contract[idx] == 1], "contract", np.int8(0))
        self.event(idx, 0, "retirement", day)
        job = ~retires & (status == STATUS["student"]) & (age0 >= 21) & (rng.random(active.size) < 0.04)
        idx = active[job]
        day = self.day_in(idx.size, d0, d1)
        self.change(idx, day, "status", np.int8(STATUS["employee_group"]))
        self.change(idx, day, "contract", np.int8(1))
        self.event(idx, 0, "first_job", day)
        lose = ~retires & np.isin(status, WORKING[:1]) & (rng.random(active.size) < 0.004)
        back = ~retires & (status == STATUS["unemployed"]) & (rng.random(active.size) < 0.03)
        for mask, new in ((lose, STATUS["unemployed"]), (back, STATUS["employee_group"])):
            idx = active[mask]
            self.change(idx, self.day_in(idx.size, d0, d1), "status", np.int8(new))

    def online_accounts(self, active: np.ndarray, d0: int, d1: int) -> None:
        b = self.b
        age = b.age(d0)[active, 0]
        rate = np.clip(0.008 - 0.0001 * (age - 30), 0.001, 0.008)
        opens = (b.online[active] == NO_DAY) & (self.rng.random(active.size) < rate)
        idx = active[opens]
        day = self.day_in(idx.size, d0, d1)
        self.change(idx, day, "online", day)

    def hospital_and_chronic(self, active: np.ndarray, d0: int, d1: int) -> None:
        b, rng = self.b, self.rng
        age = b.age(d0)[active]
        covered = b.exists[active]
        profile = cal.age_curve(cal.AGE_PROFILE["hospital"], age) / cal.population_mean(
            cal.AGE_PROFILE["hospital"]
        )
        chronic = b.last["chronic"][active] != NO_DAY
        rate = life.hospital_rate(age, chronic)
        rows, cols = np.nonzero(covered & (rng.random(rate.shape) < rate))
        idx, slot = active[rows], cols
        day = self.day_in(idx.size, d0, d1)
        self.event(idx, slot, "hospitalisation", day)
        b.last["hosp"][idx, slot] = day
        self.claims.hospital_stays(idx, slot, day)
        start = ~chronic & covered & (rng.random(rate.shape) < cal.CHRONIC_INCIDENCE_PER_YEAR / 12 * profile)
        rows, cols = np.nonzero(start)
        idx, slot = active[rows], cols
        day = self.day_in(idx.size, d0, d1)
        self.event(idx, slot, "chronic_start", day)
        b.last["chronic"][idx, slot] = day

    # --- actions: campaigns, organic behaviour, outcomes --------------------------------------

    def actions(self, t: int, active: np.ndarray, d0: int, d1: int) -> None:
        from features.synthetic.campaigns import close_campaigns, run_campaigns

        b, month = self.b, int(self.calendar.month_numbers[t])
        prev = bh.prevention_hazards(b, d0, month)
        oop12 = self.oop.sum(axis=1)
        offers = bh.offer_hazards(b, d0, oop12)
        lift = run_campaigns(self, t, active, d0, d1, prev, offers)
        self.prevention_outcomes(active, d0, d1, prev, lift)
        self.offer_outcomes(active, d0, d1, offers, lift)
        close_campaigns(self, t)

    def record_truth(self, t: int, d0: int) -> None:
        """The ground truth of the month, from what is known on its first day (``truth``)."""
        from features.synthetic.truth import ninety_day_truth

        idx, p = ninety_day_truth(self, d0)
        self.truth.add(
            member=idx, month=np.full(idx.size, self.calendar.month_starts[t]),
            **{a: p[a].astype(np.float32) for a in vocab.ACTION_IDS},
        )  # fmt: skip

    def prevention_outcomes(
        self, active: np.ndarray, d0: int, d1: int, prev: dict[str, np.ndarray],
        lift: dict[str, np.ndarray],
    ) -> None:  # fmt: skip
        b, rng = self.b, self.rng
        covered = b.exists[active]
        for a in vocab.PREVENTION_ACTIONS:
            h = prev[a][active]
            if a in lift:
                h = h.copy()
                h[:, 0] = 1.0 - (1.0 - h[:, 0]) ** np.where(lift[a][active], bh.EXPOSURE_LIFT[a], 1.0)
            rows, cols = np.nonzero(covered & (rng.random(h.shape) < h))
            idx, slot = active[rows], cols
            day = self.day_in(idx.size, d0, d1)
            if a in lift:
                accepted = lift[a][idx] & (slot == 0)
                day = np.where(accepted, np.minimum(lift["_day"][idx] + 3 + rng.integers(0, 40, idx.size),
                                                    d1 - 1), day)  # fmt: skip
                self.interaction_accepted(idx[accepted], a)
            self.claims.prevention(a, idx, slot, day)

    def offer_outcomes(
        self, active: np.ndarray, d0: int, d1: int, offers: dict[str, np.ndarray],
        lift: dict[str, np.ndarray],
    ) -> None:  # fmt: skip
        b, rng = self.b, self.rng
        for a in vocab.OFFER_ACTIONS:
            h = offers[a][active]
            exposed = lift[a][active] if a in lift else np.zeros(active.size, dtype=bool)
            h = 1.0 - (1.0 - h) ** np.where(exposed, bh.EXPOSURE_LIFT[a], 1.0)
            takes = rng.random(active.size) < h
            idx = active[takes]
            day = self.day_in(idx.size, d0, d1)
            acc = exposed[takes]
            day = np.where(acc, np.minimum(lift["_day"][idx] + rng.integers(1, 20, idx.size), d1 - 1),
                           day).astype(np.int32)  # fmt: skip
            self.interaction_accepted(idx[acc], a)
            if a == "health_formula_upgrade":
                self.change(idx, day, "formula", np.minimum(b.formula[idx] + 1, 4).astype(np.int8))
            else:
                b.holding[idx, PRODUCT_INDEX[a]] = day

    def interaction_accepted(self, idx: np.ndarray, action: str) -> None:
        """Mark this month's exposure of these members to ``action`` as accepted."""
        from features.synthetic.campaigns import mark_accepted

        mark_accepted(self, idx, ACTION_INDEX[action])

    def holding_lapses(self, active: np.ndarray, d0: int, d1: int) -> None:
        b = self.b
        for j in range(len(vocab.PRODUCTS)):
            held = (b.holding[active, j] != NO_DAY) & (b.holding[active, j] < d0)
            lapse = active[held & (self.rng.random(active.size) < 0.004)]
            self.close_holdings(lapse, j, self.day_in(lapse.size, d0, d1))

    def close_holdings(self, idx: np.ndarray, j: int, day: np.ndarray) -> None:
        b = self.b
        held = b.holding[idx, j] != NO_DAY
        idx, day = idx[held], np.broadcast_to(day, held.shape)[held]
        start = b.holding[idx, j]
        self.holdings.add(member=idx, product=np.full(idx.size, j), start=start,
                          end=np.maximum(day, start + 1).astype(np.int32))  # fmt: skip
        b.holding[idx, j] = NO_DAY

    def finish(self) -> None:
        b = self.b
        for j in range(len(vocab.PRODUCTS)):
            idx = np.flatnonzero(b.holding[:, j] != NO_DAY)
            self.holdings.add(member=idx, product=np.full(idx.size, j), start=b.holding[idx, j],
                              end=np.full(idx.size, NO_DAY, dtype=np.int32))  # fmt: skip
        self.flush_versions()
        idx = np.arange(b.n)
        self.versions.add(
            member=idx, valid_from=b.version_from.astype(np.int64),
            valid_to=np.full(b.n, NO_DAY, dtype=np.int64),
            **{f: self.snapshot[f] for f in VERSIONED},
        )  # fmt: skip
