"""Member profiles as of a date, written once as Ibis expressions (DuckDB or Spark).

One row per member active on the as-of date, using only facts dated before it:
claims paid before it, versions, coverage, holdings and exposures that started before
it. Money is summed in integer cents so every engine returns identical values.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
from ibis import _

from features import moments as mo
from features.moments import Sources
from features.registry import (
    CARE_LABELS,
    CARE_WINDOWS,
    MOMENTS,
    PRODUCT_LABELS,
    STATUS_LABELS,
    WINDOW_DAYS,
)
from nba import vocab

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25
PREVENTION_ACTS = {
    "dental": ("care_category", ("dental",)),
    "eye_exam": ("act", ("ophthalmologist", "glasses", "lenses")),
    "mammography": ("act", ("mammography",)),
    "colorectal_test": ("act", ("colorectal_test",)),
    "cervical_smear": ("act", ("cervical_smear",)),
    "gynecologist": ("act", ("gynecologist",)),
    "flu_vaccine": ("act", ("flu",)),
    "hearing_test": ("care_category", ("hearing",)),
    "prevention_checkup": ("act", ("prevention_checkup",)),
}


def months_between(as_of: dt.date, date: ir.DateValue) -> ir.IntegerValue:
    """Whole months from ``date`` to the as-of date (30.4375-day months)."""
    return (ibis.date(as_of).delta(date, unit="day") / DAYS_PER_MONTH).floor().cast("int64")


def years_between(as_of: dt.date, date: ir.DateValue) -> ir.IntegerValue:
    return (ibis.date(as_of).delta(date, unit="day") / DAYS_PER_YEAR).floor().cast("int64")


def members_at(src: Sources, as_of: dt.date) -> ir.Table:
    """The version in force for every member whose membership is active on ``as_of``."""
    latest = mo.version_changes(src.members, as_of)
    latest = latest.filter(latest.latest)
    active = (latest.membership_start < as_of) & (
        latest.membership_end.isnull() | (latest.membership_end >= as_of)
    )
    return latest.filter(active)


def base_features(src: Sources, as_of: dt.date) -> ir.Table:
    m = members_at(src, as_of)
    age = years_between(as_of, m.birth_date)
    online = m.online_account_since.notnull() & (m.online_account_since < as_of)
    cols: dict[str, ir.Value] = {
        "member_id": m.member_id,
        "age": age,
        "sex_female": m.sex == "F",
        "vulnerable": m.vulnerable,
        "region": m.region,
        "married": m.marital_status.isin(mo.FORMAL),
        "widowed": m.marital_status == "widowed",
        "separated": m.marital_status == "separated",
        "formula_level": m.formula_level.cast("int64"),
        "collective_contract": m.contract_type == "collective",
        "tenure_months": months_between(as_of, m.membership_start),
        "years_to_retirement_age": ibis.ifelse(
            m.status != "retired", ibis.greatest(mo.RETIREMENT_LEGAL_AGE - age, 0), ibis.null()
        ).cast("int64"),
        "online_account": online,
        "months_since_online_account": ibis.ifelse(
            online, months_between(as_of, m.online_account_since), ibis.null()
        ).cast("int64"),
        "birth_date": m.birth_date,
        "status": m.status,
    }
    cols.update({f"status_{s}": m.status == s for s in STATUS_LABELS})
    return m.select(**cols)


def household(src: Sources, as_of: dt.date) -> ir.Table:
    b = src.beneficiaries
    covered = b.filter((b.start_date < as_of) & (b.end_date.isnull() | (b.end_date >= as_of)))
    child_age = ibis.ifelse(covered.role == "child", years_between(as_of, covered.birth_date), ibis.null())
    return covered.group_by("member_id").aggregate(
        n_adults=(covered.role != "child").cast("int64").sum(),
        n_children=(covered.role == "child").cast("int64").sum(),
        youngest_child_age=child_age.min(),
        eldest_child_age=child_age.max(),
        has_spouse=(covered.role == "spouse").any(),
    )


def care_by_category(src: Sources, as_of: dt.date) -> ir.Table:
    """Count, spend and out-of-pocket (cents) per member, care category and window; reversals net out.

    One group per (member, category) with a sum per window and measure, plus the last paid
    line's date: on 93 M lines, far cheaper than (member, category, window) groups followed
    by a pivot, or a hundred conditional sums per member over every line. Sums are of whole
    numbers held as doubles (exact below 2**53, in any order, and never -0.0 as sums start
    at 0): narrower aggregate states than 128-bit integer sums. A window keeps a line's
    measure times 1.0 and drops it times 0.0, cheaper than a conditional expression per sum.
    """
    c = mo.paid_before(src.claims, as_of)
    c = c.filter(c.care_category.isin(tuple(CARE_LABELS)))
    # each measure computed once per line, in its own projection, before the windows pick it up
    c = c.mutate(
        count=ibis.ifelse(c.is_reversal, -1, 1).cast("float64"),
        spend=_whole(c.total_cost * 100),
        out_of_pocket=_whole(c.out_of_pocket * 100),
    )
    aggs: dict[str, ir.Value] = {}
    for w in CARE_WINDOWS:
        within = _within(c.care_date, as_of, WINDOW_DAYS[w]).cast("float64")
        for kind in ("count", "spend", "out_of_pocket"):
            aggs[f"{kind}_{w}m"] = (c[kind] * within).sum()
    aggs["last"] = ibis.ifelse(~c.is_reversal, c.care_date, ibis.null()).max()
    return c.group_by(["member_id", "care_category"]).aggregate(**aggs)


@ibis.udf.scalar.builtin(name="round")
def _whole(x: float) -> float:  # type: ignore[empty-body]
    """The nearest whole number (halves away from zero) as a double: the engines' one-argument
    ``round``, which DuckDB computes about three times faster than the ``round(x, 0)`` Ibis
    writes (a rounding to a number of digits) and its cast to an integer."""


def care(by_category: ir.Table, by_join: bool) -> list[ir.Table]:
    """The care columns of each member, from ``care_by_category``, as tables to join on member_id.

    ``by_join``: one table per category, the rows of that category (a join each); otherwise
    one table, a sum per category and measure over each member's rows (a single aggregation).
    """
    measures = [f"{kind}_{w}m" for w in CARE_WINDOWS for kind in ("count", "spend", "out_of_pocket")]
    g = by_category
    if by_join:
        return [
            g.filter(g.care_category == cat).select(
                "member_id", **{f"{cat}_{m}": m for m in measures}, **{f"last_claim_{cat}": "last"}
            )
            for cat in CARE_LABELS
        ]
    aggs: dict[str, ir.Value] = {}
    for cat in CARE_LABELS:
        inside = g.care_category == cat
        aggs.update({f"{cat}_{m}": ibis.ifelse(inside, g[m], 0.0).sum() for m in measures})
        aggs[f"last_claim_{cat}"] = ibis.ifelse(inside, g["last"], ibis.null()).max()
    return [g.group_by("member_id").aggregate(**aggs)]


def claim_facts(src: Sources, as_of: dt.date) -> ir.Table:
    """What the other claim features need of each person's lines, in one aggregation.

    Only the few lines they read (stays, long-term treatments, prevention acts: about a
    quarter of all) are aggregated, once per (member, beneficiary), rather than read once per
    feature. They are chosen by act alone, which DuckDB tests faster than conditions on two
    columns: a care category's lines are those of its acts (the contract checks that each
    line's act is one of its category's); each aggregate keeps its exact condition.
    """
    acts = {"stay", "chronic_treatment"}
    for column, values in PREVENTION_ACTS.values():
        for value in values:
            acts.update(vocab.CARE_ACTS[value] if column == "care_category" else (value,))
    c = mo.paid_before(src.claims, as_of)
    c = c.filter(c.act.isin(tuple(sorted(acts))))
    stay_12m = (c.act == "stay") & _within(c.care_date, as_of, 365)
    aggs: dict[str, ir.Value] = {
        "stays_12m": ibis.ifelse(stay_12m, ibis.ifelse(c.is_reversal, -1, 1), 0).sum(),
        "last_stay": _date_if(mo.hospital_stay(c), c.care_date).max(),
        "first_chronic": _date_if(mo.chronic_treatment(c), c.care_date).min(),
        "last_chronic": _date_if(mo.chronic_treatment(c), c.care_date).max(),
    }
    for name, (column, values) in PREVENTION_ACTS.items():
        aggs[f"last_{name}"] = _date_if(c[column].isin(values) & ~c.is_reversal, c.care_date).max()
    return c.group_by(["member_id", "beneficiary_id"]).aggregate(**aggs)


def claim_features(src: Sources, as_of: dt.date, history_start: dt.date | None) -> ir.Table:
    """Hospital stays over 12 months (reversals net out), household members on a long-term
    treatment, the subscriber's own prevention history, and the moments found in the claims.

    The join to the beneficiaries loses no facts: the contract checks that each claim's
    beneficiary is one.
    """
    b = src.beneficiaries.select("beneficiary_id", "role", covered_from="start_date")
    f = claim_facts(src, as_of).join(b, "beneficiary_id")
    own = f.role == "subscriber"
    treated = _within(f.last_chronic, as_of, 91)
    aggs: dict[str, ir.Value] = {
        "hospital_stays_12m": f.stays_12m.sum(),
        "household_chronic": _count_if(treated),
        "chronic_treatment": (own & treated).any(),
        **{f"last_{name}": f[f"last_{name}"].max(where=own) for name in PREVENTION_ACTS},
        "moment_hospitalisation": f.last_stay.max(),
    }
    if history_start is not None:  # otherwise no line was paid: there are no facts
        starts = mo.starts_treatment(f.first_chronic, f.covered_from, history_start)
        aggs["moment_chronic_start"] = f.first_chronic.max(where=starts)
    else:
        aggs["moment_chronic_start"] = ibis.null("date")
    return f.group_by("member_id").aggregate(**aggs)


def dental_visits(src: Sources, as_of: dt.date) -> ir.Table:
    """Days with a dental check-up of the subscriber over 24 months.

    A query of its own: a distinct count among ``claim_facts``' aggregates makes DuckDB split
    that whole aggregation in two (measured: 2.5 times its cost).
    """
    c = mo.paid_before(src.claims, as_of)
    c = c.filter((c.act == "checkup") & _within(c.care_date, as_of, 730) & ~c.is_reversal)
    b = src.beneficiaries
    subscribers = b.filter(b.role == "subscriber").select("beneficiary_id")
    days = c.join(subscribers, "beneficiary_id").select("member_id", "care_date").distinct()
    return days.group_by("member_id").aggregate(dental_visits_24m=_.count())


def _date_if(condition: ir.BooleanValue, date: ir.DateValue) -> ir.DateValue:
    """``date`` where ``condition`` holds, else null: a conditional expression rather than an
    aggregate's filter, which DuckDB evaluates at a higher cost."""
    return ibis.ifelse(condition, date, ibis.null())


def _within(date: ir.DateValue, as_of: dt.date, days: int) -> ir.BooleanValue:
    """At most ``days`` days before the as-of date: a comparison with a constant date rather
    than date arithmetic on every line."""
    return date >= ibis.date(as_of - dt.timedelta(days=days))


def holdings(src: Sources, as_of: dt.date) -> ir.Table:
    h = src.holdings
    held = h.filter((h.start_date < as_of) & (h.end_date.isnull() | (h.end_date >= as_of)))
    aggs: dict[str, ir.Value] = {}
    for p in PRODUCT_LABELS:
        aggs[f"start_{p}"] = ibis.ifelse(held["product"] == p, held.start_date, ibis.null()).min()
    return held.group_by("member_id").aggregate(**aggs)


def engagement(src: Sources, as_of: dt.date) -> ir.Table:
    """Exposures and responses before the as-of date.

    Windows compare timestamps with UTC midnights ("within 91 days" is "exposed on or after
    midnight 91 days before"), which is the same as counting days between UTC dates without
    turning each timestamp into a date.
    """
    x = src.interactions
    x = x.filter(x.exposed_at < _midnight(as_of))
    within = {days: x.exposed_at >= _midnight(as_of - dt.timedelta(days=days)) for days in (91, 365, 730)}
    answered = x.responded_at.notnull() & (x.responded_at < _midnight(as_of))
    positive = answered & x.response.isin(("clicked", "accepted"))
    aggs: dict[str, ir.Value] = {
        "app_exposures_3m": _count_if((x.channel == "app") & within[91]),
        "exposures_12m": _count_if(within[365]),
        "dismissed_12m": _count_if(within[365] & answered & (x.response == "dismissed")),
        "last_contact": x.exposed_at.max().date(),
    }
    for a in vocab.ACTION_IDS:
        recent = (x.action_id == a) & within[730]
        aggs[f"exposures_{a}_24m"] = _count_if(recent)
        aggs[f"responses_{a}_24m"] = _count_if(recent & positive)
    return x.group_by("member_id").aggregate(**aggs)


def _count_if(condition: ir.BooleanValue) -> ir.IntegerScalar:
    """Rows where ``condition`` holds: a count (8-byte state) rather than a sum of 0/1 (a 128-bit one)."""
    return ibis.ifelse(condition, 1, ibis.null()).count()


def _midnight(day: dt.date) -> ir.TimestampValue:
    return ibis.timestamp(dt.datetime.combine(day, dt.time()), timezone="UTC")


def moment_dates(src: Sources, as_of: dt.date, history_start: dt.date | None) -> ir.Table:
    """The latest date of each moment found in the members and beneficiaries tables
    (``claim_features`` has those found in the claims)."""
    events = mo.record_events(src, as_of, history_start)
    aggs = {
        f"moment_{name}": ibis.ifelse(events.moment == name, events.date, ibis.null()).max()
        for name, *_rest in MOMENTS
        if name not in ("retirement_within_3y", "age_step", *mo.CLAIM_MOMENTS)
    }
    return events.group_by("member_id").aggregate(**aggs)
