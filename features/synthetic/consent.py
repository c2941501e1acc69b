"""Consent events (COMPLIANCE.md) and the consent state campaigns respect."""

from __future__ import annotations

import numpy as np

from features.synthetic.records import NO_DAY, Rows
from features.synthetic.state import YEAR, Block
from nba import vocab

PURPOSE = {p: i for i, p in enumerate(vocab.PURPOSES)}
CHANNEL = {c: i for i, c in enumerate(vocab.CHANNELS)}
DECISION = {d: i for i, d in enumerate(vocab.CONSENT_DECISIONS)}
SOURCE = {s: i for i, s in enumerate(vocab.CONSENT_SOURCES)}
NOTICE_FROM = np.array([np.datetime64(v + "-01", "D").astype(np.int64) for v in vocab.NOTICE_VERSIONS])
NEVER = np.int32(2**31 - 1)
DAY_US = 86_400_000_000
OPT_IN = vocab.OPT_IN_CHANNELS  # push, email, sms, phone
OPT_IN_SHARE = {"push": 0.7, "email": 0.45, "sms": 0.25, "phone": 0.08}


class ConsentBook:
    """Current consent state of a block's members and the append-only events behind it."""

    def __init__(self, block: Block, rng: np.random.Generator):
        self.b, self.rng, n = block, rng, block.n
        self.rows = Rows()
        self.prevention_until = np.full(n, NO_DAY, dtype=np.int32)  # grant in force until
        self.health_until = np.full(n, NO_DAY, dtype=np.int32)
        self.offers_block = np.zeros(n, dtype=np.int8)  # 0 none, 1 objected, 2 no_other_offers
        self.opt_in = np.zeros((n, len(OPT_IN)), dtype=bool)

    def record(
        self, idx: np.ndarray, day: np.ndarray, purpose: str, channel: str, decision: str,
        expires: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Append events captured on ``day`` (a random second of it)."""
        k = idx.size
        if k == 0:
            return
        rng = self.rng
        captured = day.astype(np.int64) * DAY_US + rng.integers(6 * 3600, 22 * 3600, k) * 1_000_000
        online = (self.b.online[idx] != NO_DAY) & (self.b.online[idx] <= day)
        source = np.where(online & (rng.random(k) < 0.8), SOURCE["app"],
                          rng.choice([SOURCE["web"], SOURCE["advisor"], SOURCE["mail"]], k,
                                     p=[0.4, 0.4, 0.2]))  # fmt: skip
        # paper forms take effect when processed, a day or two after capture
        effective = captured + np.where(source == SOURCE["mail"], 2 * DAY_US, 0)
        notice = np.searchsorted(NOTICE_FROM, day, side="right") - 1
        exp = np.full(k, -1, dtype=np.int64) if expires is None else np.where(
            expires == NO_DAY, -1, expires.astype(np.int64) * DAY_US)  # fmt: skip
        self.rows.add(
            member=idx, purpose=np.full(k, PURPOSE[purpose]), channel=np.full(k, CHANNEL[channel]),
            decision=np.full(k, DECISION[decision]), notice=np.maximum(notice, 0), source=source,
            advisor=np.where(source == SOURCE["advisor"], rng.integers(100, 999, k), 0),
            captured=captured, effective=effective, expires=exp,
        )  # fmt: skip

    def initial(self, join: np.ndarray, window_start: int) -> None:
        """Choices made when joining (or, for long-standing members, under an older notice)."""
        b, rng, n = self.b, self.rng, self.b.n
        span = np.minimum(window_start - join, int(4 * YEAR))
        day = np.where(
            join >= window_start,
            join,
            window_start - 1 - (rng.random(n) * np.maximum(span, 1)).astype(np.int64),
        )
        day = day.astype(np.int32)
        online = b.online != NO_DAY
        grant = rng.random(n) < np.where(online, 0.42, 0.26)
        idx = np.flatnonzero(grant)
        self.record(idx, day[idx], "prevention", "all", "granted")
        self.prevention_until[idx] = NEVER
        denied = np.flatnonzero(~grant & (rng.random(n) < 0.3))
        self.record(denied, day[denied], "prevention", "all", "denied")
        self._grant_health(np.flatnonzero(grant & (rng.random(n) < 0.32)), day)
        u = rng.random(n)
        objected, no_other = np.flatnonzero(u < 0.07), np.flatnonzero((u >= 0.07) & (u < 0.12))
        self.record(objected, day[objected], "offers", "all", "objected")
        self.record(no_other, day[no_other], "offers", "all", "no_other_offers")
        self.offers_block[objected], self.offers_block[no_other] = 1, 2
        for j, channel in enumerate(OPT_IN):
            share = OPT_IN_SHARE[channel] * (online if channel == "push" else 1.0)
            idx = np.flatnonzero(rng.random(n) < share)
            for purpose in ("prevention", "offers"):
                self.record(idx, day[idx], purpose, channel, "granted")
            self.opt_in[idx, j] = True

    def _grant_health(self, idx: np.ndarray, day: np.ndarray) -> None:
        expiring = self.rng.random(idx.size) < 0.3
        until = np.where(expiring, day[idx] + int(2 * YEAR), NO_DAY).astype(np.int32)
        self.record(idx, day[idx], "offers_health_data", "all", "granted", expires=until)
        self.health_until[idx] = np.where(expiring, until, NEVER)

    def monthly(self, active: np.ndarray, d0: int, d1: int) -> None:
        """Grants, withdrawals and objections that happen along the way."""
        rng, k = self.rng, active.size
        day = (d0 + rng.random(k) * (d1 - d0)).astype(np.int32)
        granted = self.allowed_prevention(d0)[active]
        new = ~granted & (rng.random(k) < 0.006)
        withdraw = granted & (rng.random(k) < 0.0025)
        self.record(active[new], day[new], "prevention", "all", "granted")
        self.prevention_until[active[new]] = NEVER
        self.record(active[withdraw], day[withdraw], "prevention", "all", "withdrawn")
        self.prevention_until[active[withdraw]] = NO_DAY
        health = self.allowed_health(d0)[active]
        h_new = granted & ~health & ~withdraw & (rng.random(k) < 0.003)
        self._grant_health(active[h_new], self._full(active, day))
        h_withdraw = health & (rng.random(k) < 0.003)
        self.record(active[h_withdraw], day[h_withdraw], "offers_health_data", "all", "withdrawn")
        self.health_until[active[h_withdraw]] = NO_DAY
        free = self.offers_block[active] == 0
        obj = free & (rng.random(k) < 0.0015)
        noo = free & ~obj & (rng.random(k) < 0.001)
        self.record(active[obj], day[obj], "offers", "all", "objected")
        self.record(active[noo], day[noo], "offers", "all", "no_other_offers")
        self.offers_block[active[obj]], self.offers_block[active[noo]] = 1, 2

    def _full(self, active: np.ndarray, day: np.ndarray) -> np.ndarray:
        out = np.full(self.b.n, NO_DAY, dtype=np.int32)
        out[active] = day
        return out

    # --- state queries --------------------------------------------------------------------

    def allowed_prevention(self, day: int) -> np.ndarray:
        return (self.prevention_until != NO_DAY) & (self.prevention_until > day)

    def allowed_health(self, day: int) -> np.ndarray:
        return (self.health_until != NO_DAY) & (self.health_until > day)

    def allowed_offers(self) -> np.ndarray:
        return self.offers_block == 0
