"""Life-moment detectors ("moments de vie"), written once as Ibis expressions.

Each detector turns the source tables into events ``(member_id, moment, date)`` using
only facts dated before the as-of date; the registry documents each rule next to the
feature ``months_since_<moment>``. Detectors that have a simulated counterpart are
scored against the generator's ground truth in the tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

WORKING = ("employee_group", "self_employed", "civil_servant")
FORMAL = ("married", "pacsed")
CHRONIC_OBSERVATION_DAYS = 182
RETIREMENT_LEGAL_AGE = 64
AGE_STEPS = (40, 50, 60, 70)
CLAIM_MOMENTS = ("hospitalisation", "chronic_start")
"""Moments found in the claims; ``record_events`` finds the others."""


@dataclass(frozen=True)
class Sources:
    """The source tables as Ibis expressions on one backend."""

    members: ir.Table
    beneficiaries: ir.Table
    claims: ir.Table
    holdings: ir.Table
    interactions: ir.Table


def _events(t: ir.Table, moment: str, date: ir.DateValue) -> ir.Table:
    return t.select(member_id=t.member_id, moment=ibis.literal(moment), date=date.cast("date"))


def version_changes(members: ir.Table, as_of: dt.date) -> ir.Table:
    """Member versions known before ``as_of`` with the previous version's attributes.

    ``latest`` marks each member's version in force: one window serves the profile's current
    attributes and the moments found in version changes.
    """
    known = members.filter(members.valid_from < as_of)
    w = ibis.window(group_by=known.member_id, order_by=known.valid_from)
    return known.mutate(
        prev_marital=known.marital_status.lag().over(w),
        prev_postcode=known.postcode.lag().over(w),
        prev_status=known.status.lag().over(w),
        latest=known.valid_from.lead().over(w).isnull(),
    )


def detect(src: Sources, as_of: dt.date, history_start: dt.date | None) -> ir.Table:
    """Every detected life-moment event before ``as_of``: member_id, moment, date."""
    c = paid_before(src.claims, as_of)
    stays = c.filter(hospital_stay(c))
    parts = [record_events(src, as_of, history_start), _events(stays, "hospitalisation", stays.care_date)]
    if history_start is not None:
        chronic = c.filter(chronic_treatment(c))
        first = chronic.group_by(["member_id", "beneficiary_id"]).aggregate(first=chronic.care_date.min())
        seen = first.join(src.beneficiaries.select("beneficiary_id", "start_date"), "beneficiary_id")
        starts = seen.filter(starts_treatment(seen.first, seen.start_date, history_start))
        parts.append(_events(starts, "chronic_start", starts.first))
    return ibis.union(*parts, distinct=False)


def record_events(src: Sources, as_of: dt.date, history_start: dt.date | None) -> ir.Table:
    """The events found in the members and beneficiaries tables: every moment but those of CLAIM_MOMENTS."""
    v = version_changes(src.members, as_of)
    b = src.beneficiaries
    start = src.members.group_by("member_id").aggregate(membership_start=src.members.membership_start.min())
    kids = b.filter((b.role == "child") & (b.start_date < as_of)).join(start, "member_id")
    ended = b.filter(b.end_date.notnull() & (b.end_date < as_of))
    parts = [
        _events(kids.filter(kids.start_date > kids.membership_start), "birth_or_adoption", kids.start_date),
        _events(
            v.filter(v.marital_status.isin(FORMAL) & v.prev_marital.notnull() & ~v.prev_marital.isin(FORMAL)),
            "marriage",
            v.valid_from,
        ),
        _events(
            ended.filter((ended.role == "spouse") & (ended.end_reason == "separation")),
            "separation",
            ended.end_date,
        ),
        _events(
            ended.filter((ended.role == "spouse") & (ended.end_reason == "death")),
            "spouse_death",
            ended.end_date,
        ),
        _events(
            ended.filter((ended.role == "child") & (ended.end_reason == "left_contract")),
            "child_left_contract",
            ended.end_date,
        ),
        _events(v.filter(v.prev_postcode.notnull() & (v.postcode != v.prev_postcode)), "move", v.valid_from),
        _events(
            v.filter((v.status == "retired") & v.prev_status.notnull() & (v.prev_status != "retired")),
            "recently_retired",
            v.valid_from,
        ),
        _events(
            v.filter((v.prev_status == "student") & v.status.isin(WORKING)),
            "new_member_or_first_job",
            v.valid_from,
        ),
        _turned_18(b, as_of),
    ]
    if history_start is not None:
        first = start.filter((start.membership_start >= history_start) & (start.membership_start < as_of))
        parts.append(_events(first, "new_member_or_first_job", first.membership_start))
    return ibis.union(*parts, distinct=False)


def _turned_18(b: ir.Table, as_of: dt.date) -> ir.Table:
    kids = b.filter(b.role == "child").mutate(adult=(b.birth_date + ibis.interval(years=18)).cast("date"))
    covered = (
        (kids.adult < as_of)
        & (kids.start_date <= kids.adult)
        & (kids.end_date.isnull() | (kids.end_date > kids.adult) | (kids.end_date >= as_of))
    )
    return _events(kids.filter(covered), "child_turned_18", kids.adult)


def paid_before(claims: ir.Table, as_of: dt.date) -> ir.Table:
    """Claim lines the insurer knew of before ``as_of``: paid, and for care before it."""
    return claims.filter((claims.payment_date < as_of) & (claims.care_date < as_of))


def hospital_stay(c: ir.Table) -> ir.BooleanValue:
    """A claim line that is a hospitalisation (on its care date)."""
    return (c.care_category == "hospital") & (c.act == "stay") & ~c.is_reversal


def chronic_treatment(c: ir.Table) -> ir.BooleanValue:
    """A claim line of a long-term treatment."""
    return (c.act == "chronic_treatment") & ~c.is_reversal


def starts_treatment(
    first: ir.DateValue, covered_from: ir.DateValue, history_start: dt.date
) -> ir.BooleanValue:
    """Whether a person's first chronic-treatment line (``first``) starts a treatment.

    It does after CHRONIC_OBSERVATION_DAYS without one in the claims history while covered;
    a first line any earlier may continue a treatment the history does not show.
    """
    observed_from = ibis.greatest(covered_from, ibis.date(history_start))
    return first.delta(observed_from, unit="day") >= CHRONIC_OBSERVATION_DAYS


def age_step_date(birth_date: ir.DateValue, age: ir.IntegerValue) -> ir.Value:
    """The latest 40th/50th/60th/70th birthday already passed (null under 40)."""
    step = ibis.least(age, 79) // 10 * 10
    return ibis.ifelse(age >= AGE_STEPS[0], (birth_date + step.as_interval("Y")).cast("date"), ibis.null())
