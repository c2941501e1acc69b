"""`check`: COMPLIANCE.md's "deny unless allowed", rule by rule, as a table (no database)."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import pytest

from nba import vocab
from nba.errors import InvalidField
from serving.consent import ConsentEvent, Verdict, check

DAY0 = dt.datetime(2025, 1, 1, 9, tzinfo=dt.UTC)
AT = DAY0 + dt.timedelta(days=100)


def day(n: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=n)


def ev(
    event_id: int,
    purpose: str,
    channel: str,
    decision: str,
    captured: float = 0,
    effective: float | None = None,
    expires: float | None = None,
) -> ConsentEvent:
    """An event of member 1 captured on day ``captured`` (days after DAY0)."""
    return ConsentEvent(
        event_id, 1, purpose, channel, decision, "2024-06", "app", "member",
        captured_at=day(captured),
        effective_from=day(captured if effective is None else effective),
        expires_at=None if expires is None else day(expires),
    )  # fmt: skip


class Case(NamedTuple):
    events: list[ConsentEvent]
    purpose: str
    channel: str
    expected: Verdict
    adult: bool = True
    vulnerable: bool = False


def allowed(*used: int) -> Verdict:
    return Verdict(True, None, used)


def denied(reason: str, *used: int) -> Verdict:
    return Verdict(False, reason, used)


P, OF, H = "prevention", "offers", "offers_health_data"
GRANT_P = ev(1, P, "all", "granted")
GRANT_H = ev(1, H, "all", "granted")

CASES = {
    # rule 2: consent-based purposes need a purpose-level grant in force
    "prevention without any event": Case([], P, "app", denied(vocab.NO_CONSENT)),
    "prevention granted, in app": Case([GRANT_P], P, "app", allowed(1)),
    "prevention granted, at the advisor desk": Case([GRANT_P], P, "advisor", allowed(1)),
    "prevention denied": Case([ev(1, P, "all", "denied")], P, "app", denied(vocab.NO_CONSENT, 1)),
    "prevention grant expired": Case(
        [ev(1, P, "all", "granted", expires=50)], P, "app", denied(vocab.NO_CONSENT, 1)),
    "prevention grant expires exactly now": Case(
        [ev(1, P, "all", "granted", expires=100)], P, "app", denied(vocab.NO_CONSENT, 1)),
    "prevention grant not yet effective": Case(
        [ev(1, P, "all", "granted", effective=101)], P, "app", denied(vocab.NO_CONSENT)),
    "a lapsed newer grant does not revive an older one": Case(
        [ev(1, P, "all", "granted"), ev(2, P, "all", "granted", 5, expires=50)], P, "app",
        denied(vocab.NO_CONSENT, 2)),
    "a channel opt-in never grants the purpose": Case(
        [ev(1, P, "email", "granted")], P, "email", denied(vocab.NO_CONSENT)),
    "prevention and minors": Case([GRANT_P], P, "app", allowed(1), adult=False),
    "prevention and vulnerable members": Case([GRANT_P], P, "app", allowed(1), vulnerable=True),
    # rule 1: a refusal in force overrides any grant; the latest choice counts
    "prevention granted then withdrawn": Case(
        [GRANT_P, ev(2, P, "all", "withdrawn", 10)], P, "app", denied(vocab.WITHDRAWN, 2)),
    "prevention withdrawn then granted again": Case(
        [ev(1, P, "all", "withdrawn"), ev(2, P, "all", "granted", 10)], P, "app", allowed(2)),
    "prevention objected": Case(
        [GRANT_P, ev(2, P, "all", "objected", 10)], P, "app", denied(vocab.OBJECTED, 2)),
    "a withdrawal not yet effective": Case(
        [GRANT_P, ev(2, P, "all", "withdrawn", 10, effective=150)], P, "app", allowed(1)),
    "capture order, not effective date, orders choices": Case(
        [ev(1, P, "all", "granted", 10, effective=12), ev(2, P, "all", "withdrawn", 11)], P, "app",
        denied(vocab.WITHDRAWN, 2)),
    "same capture time: the higher event id is the later": Case(
        [ev(2, P, "all", "withdrawn", 10), ev(1, P, "all", "granted", 10)], P, "app",
        denied(vocab.WITHDRAWN, 2)),
    "a purpose-level withdrawal overrides a channel opt-in": Case(
        [GRANT_P, ev(2, P, "email", "granted", 5), ev(3, P, "all", "withdrawn", 9)], P, "email",
        denied(vocab.WITHDRAWN, 3)),
    # rule 3: offers without consent, unless objected; adults not vulnerable only
    "offers without any event": Case([], OF, "app", allowed()),
    "offers to a minor": Case([], OF, "app", denied(vocab.MINOR), adult=False),
    "offers to a vulnerable member": Case([], OF, "app", denied(vocab.VULNERABLE), vulnerable=True),
    "offers objected": Case([ev(1, OF, "all", "objected")], OF, "app", denied(vocab.OBJECTED, 1)),
    "an objection outranks MINOR": Case(
        [ev(1, OF, "all", "objected")], OF, "app", denied(vocab.OBJECTED, 1), adult=False),
    "offers: no other offers": Case(
        [ev(1, OF, "all", "no_other_offers")], OF, "advisor", denied(vocab.NO_OTHER_OFFERS, 1)),
    "offers withdrawn": Case([ev(1, OF, "all", "withdrawn")], OF, "app", denied(vocab.WITHDRAWN, 1)),
    "offers denied is honoured": Case([ev(1, OF, "all", "denied")], OF, "app", denied(vocab.NO_CONSENT, 1)),
    "an objection lifted by a later grant": Case(
        [ev(1, OF, "all", "objected"), ev(2, OF, "all", "granted", 10)], OF, "app", allowed(2)),
    "an objection that has expired": Case([ev(1, OF, "all", "objected", expires=50)], OF, "app", allowed()),
    "an objection effective tomorrow": Case(
        [ev(1, OF, "all", "objected", 99, effective=101)], OF, "app", allowed()),
    "an 'all' objection applies to every channel": Case(
        [ev(1, OF, "sms", "granted"), ev(2, OF, "all", "objected", 5)], OF, "sms", denied(vocab.OBJECTED, 2)),
    # health-data offers: offers (rule 1 reads the offers state first) that need explicit consent
    "health-data offer without consent": Case([], H, "app", denied(vocab.HEALTH_DATA_NOT_CONSENTED)),
    "health-data offer with consent": Case([GRANT_H], H, "app", allowed(1)),
    "health-data consent expired": Case(
        [ev(1, H, "all", "granted", expires=90)], H, "app", denied(vocab.HEALTH_DATA_NOT_CONSENTED, 1)),
    "health-data consent withdrawn": Case(
        [GRANT_H, ev(2, H, "all", "withdrawn", 3)], H, "app", denied(vocab.WITHDRAWN, 2)),
    "no other offers stops health-data offers": Case(
        [GRANT_H, ev(2, OF, "all", "no_other_offers", 3)], H, "app", denied(vocab.NO_OTHER_OFFERS, 2)),
    "an offers objection stops health-data offers": Case(
        [ev(1, OF, "all", "objected"), ev(2, H, "all", "granted", 3)], H, "app", denied(vocab.OBJECTED, 1)),
    "health-data offers to a minor": Case([GRANT_H], H, "app", denied(vocab.MINOR), adult=False),
    "health-data offers to a vulnerable member": Case(
        [GRANT_H], H, "app", denied(vocab.VULNERABLE), vulnerable=True),
    "missing health-data consent outranks MINOR": Case(
        [], H, "app", denied(vocab.HEALTH_DATA_NOT_CONSENTED), adult=False),
    # rule 4: the channel must be permitted
    "e-mail without an opt-in": Case([GRANT_P], P, "email", denied(vocab.CHANNEL_NOT_PERMITTED)),
    "e-mail with the purpose's opt-in": Case(
        [GRANT_P, ev(2, P, "email", "granted")], P, "email", allowed(1, 2)),
    "an opt-in for another purpose does not count": Case(
        [GRANT_P, ev(2, OF, "email", "granted")], P, "email", denied(vocab.CHANNEL_NOT_PERMITTED)),
    "an opt-in for another channel does not count": Case(
        [GRANT_P, ev(2, P, "sms", "granted")], P, "push", denied(vocab.CHANNEL_NOT_PERMITTED)),
    "an expired opt-in": Case(
        [GRANT_P, ev(2, P, "sms", "granted", expires=30)], P, "sms", denied(vocab.CHANNEL_NOT_PERMITTED, 2)),
    "an opt-in withdrawn": Case(
        [GRANT_P, ev(2, P, "phone", "granted"), ev(3, P, "phone", "withdrawn", 4)], P, "phone",
        denied(vocab.CHANNEL_NOT_PERMITTED, 3)),
    "the app refused for this purpose": Case(
        [GRANT_P, ev(2, P, "app", "objected", 4)], P, "app", denied(vocab.CHANNEL_NOT_PERMITTED, 2)),
    "offers by push with the opt-in": Case([ev(1, OF, "push", "granted")], OF, "push", allowed(1)),
    "offers by sms without the opt-in": Case([], OF, "sms", denied(vocab.CHANNEL_NOT_PERMITTED)),
    "a refusal of offers by e-mail leaves the app": Case(
        [ev(1, OF, "email", "objected")], OF, "app", allowed()),
    "health-data offer by e-mail with the offers opt-in": Case(
        [GRANT_H, ev(2, OF, "email", "granted")], H, "email", allowed(1, 2)),
    "health-data offer by e-mail with its own opt-in": Case(
        [GRANT_H, ev(2, H, "email", "granted")], H, "email", allowed(1, 2)),
    "health-data offer by e-mail refused under either purpose": Case(
        [GRANT_H, ev(2, OF, "email", "granted"), ev(3, H, "email", "denied", 2)], H, "email",
        denied(vocab.CHANNEL_NOT_PERMITTED, 3)),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_check_follows_compliance_rules(case: Case) -> None:
    got = check(case.events, case.purpose, case.channel, AT, adult=case.adult, vulnerable=case.vulnerable)
    assert got == case.expected


def test_check_ignores_event_order_in_the_list() -> None:
    events = CASES["an opt-in withdrawn"].events
    forward = check(events, P, "phone", AT, adult=True, vulnerable=False)
    assert check(events[::-1], P, "phone", AT, adult=True, vulnerable=False) == forward


@pytest.mark.parametrize(
    ("purpose", "channel", "at", "field"),
    [
        ("marketing", "app", AT, "purpose"),
        ("offers", "all", AT, "channel"),
        ("offers", "fax", AT, "channel"),
        ("offers", "app", AT.replace(tzinfo=None), "at"),
    ],
)
def test_check_names_a_bad_argument(purpose: str, channel: str, at: dt.datetime, field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        check([], purpose, channel, at, adult=True, vulnerable=False)
    assert raised.value.field == field
    assert field in str(raised.value)


def random_history(rng: np.random.Generator, n: int) -> list[ConsentEvent]:
    events = []
    for event_id in range(1, n + 1):
        captured = float(rng.uniform(0, 120))
        expires = captured + float(rng.uniform(1, 200)) if rng.random() < 0.3 else None
        effective = captured + float(rng.uniform(0, 10)) if rng.random() < 0.2 else None
        events.append(ev(event_id, str(rng.choice(vocab.PURPOSES)), str(rng.choice(vocab.CHANNELS)),
                         str(rng.choice(vocab.CONSENT_DECISIONS)), captured, effective, expires))  # fmt: skip
    return events


@pytest.mark.parametrize("seed", range(5))
def test_verdicts_hold_their_invariants_for_any_history(seed: int) -> None:
    """Whatever the history: an allowed verdict rests on events in force, never on a refusal in force."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        events = random_history(rng, int(rng.integers(0, 12)))
        by_id = {e.event_id: e for e in events}
        for purpose in vocab.PURPOSES:
            for channel in vocab.CONTACT_CHANNELS:
                adult, vulnerable = bool(rng.random() < 0.9), bool(rng.random() < 0.1)
                verdict = check(events, purpose, channel, AT, adult=adult, vulnerable=vulnerable)
                assert set(verdict.events_used) <= set(by_id)
                if not verdict.allowed:
                    assert verdict.reason in vocab.REASON_CODES
                    continue
                used = [by_id[i] for i in verdict.events_used]
                assert verdict.reason is None
                assert all(e.decision == "granted" and e.in_force(AT) for e in used)
                if purpose in vocab.COMMERCIAL_PURPOSES:
                    assert adult and not vulnerable
                if purpose in vocab.CONSENT_BASED_PURPOSES:
                    assert any(e.purpose == purpose and e.channel == "all" for e in used)
                if channel in vocab.OPT_IN_CHANNELS:
                    assert any(e.channel == channel for e in used)
