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
    m = src.members.filter(src.members.valid_from < as_of)
    w = ibis.window(group_by=m.member_id, order_by=ibis.desc(m.valid_from))
    latest = m.mutate(rn=ibis.row_number().over(w)).filter(_.rn == 0).drop("rn")
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


def care(src: Sources, as_of: dt.date) -> ir.Table:
    """Count, spend and out-of-pocket per category and window; reversals net out.

    Two steps: one cheap aggregation per (member, category, window bucket), then a pivot
    over those few rows, rather than a hundred conditional sums over every claim line.
    """
    c = mo.paid_before(src.claims, as_of)
    days = ibis.date(as_of).delta(c.care_date, unit="day")
    bucket = ibis.cases(*((days <= WINDOW_DAYS[w], w) for w in CARE_WINDOWS), else_=999)
    sign = ibis.ifelse(c.is_reversal, -1, 1)
    g = (
        c.filter(c.care_category.isin(tuple(CARE_LABELS)))
        .mutate(bucket=bucket, sign=sign)
        .group_by(["member_id", "care_category", "bucket"])
        .aggregate(
            n=_.sign.sum(),
            cost=(_.total_cost * 100).round().cast("int64").sum(),
            oop=(_.out_of_pocket * 100).round().cast("int64").sum(),
            last=ibis.ifelse(~_.is_reversal, _.care_date, ibis.null()).max(),
        )
    )
    aggs: dict[str, ir.Value] = {}
    for cat in CARE_LABELS:
        in_cat = g.care_category == cat
        for w in CARE_WINDOWS:
            inside = in_cat & (g.bucket <= w)
            aggs[f"{cat}_count_{w}m"] = ibis.ifelse(inside, g.n, 0).sum()
            aggs[f"{cat}_spend_{w}m"] = ibis.ifelse(inside, g.cost, 0).sum()
            aggs[f"{cat}_out_of_pocket_{w}m"] = ibis.ifelse(inside, g.oop, 0).sum()
        aggs[f"last_claim_{cat}"] = ibis.ifelse(in_cat, g["last"], ibis.null()).max()
    extra = _hospital_and_chronic(c, days).rename(hc_member_id="member_id")
    per_member = g.group_by("member_id").aggregate(**aggs)
    joined = per_member.outer_join(extra, per_member.member_id == extra.hc_member_id)
    return joined.select(
        ~ibis.selectors.cols("member_id", "hc_member_id"),
        member_id=ibis.coalesce(joined.member_id, joined.hc_member_id),
    )


def _hospital_and_chronic(c: ir.Table, days: ir.IntegerValue) -> ir.Table:
    c = c.mutate(days=days)
    recent = c.filter((c.days <= 365) & (c.act.isin(("stay", "chronic_treatment"))))
    stay = (recent.act == "stay").cast("int64") * ibis.ifelse(recent.is_reversal, -1, 1)
    chronic = (recent.act == "chronic_treatment") & (recent.days <= 91) & ~recent.is_reversal
    return recent.group_by("member_id").aggregate(
        hospital_stays_12m=stay.sum(),
        household_chronic=ibis.ifelse(chronic, recent.beneficiary_id, ibis.null()).nunique(),
    )


def prevention(src: Sources, as_of: dt.date) -> ir.Table:
    """The subscriber's own prevention history."""
    b = src.beneficiaries
    subscribers = b.filter(b.role == "subscriber").select("beneficiary_id")
    c = mo.paid_before(src.claims, as_of)
    acts = {v for column, values in PREVENTION_ACTS.values() if column == "act" for v in values}
    categories = {
        v for column, values in PREVENTION_ACTS.values() if column == "care_category" for v in values
    }
    # filter to the few acts that matter before joining, rather than joining every claim line
    relevant = c.act.isin((*sorted(acts), "checkup", "chronic_treatment")) | c.care_category.isin(
        tuple(sorted(categories))
    )
    c = c.filter(relevant & ~c.is_reversal).join(subscribers, "beneficiary_id")
    aggs: dict[str, ir.Value] = {}
    for name, (column, values) in PREVENTION_ACTS.items():
        aggs[f"last_{name}"] = ibis.ifelse(c[column].isin(values), c.care_date, ibis.null()).max()
    days = ibis.date(as_of).delta(c.care_date, unit="day")
    aggs["dental_visits_24m"] = ibis.ifelse(
        (c.act == "checkup") & (days <= 730), c.care_date, ibis.null()
    ).nunique()
    aggs["chronic_treatment"] = ((c.act == "chronic_treatment") & (days <= 91)).any()
    return c.group_by("member_id").aggregate(**aggs)


def holdings(src: Sources, as_of: dt.date) -> ir.Table:
    h = src.holdings
    held = h.filter((h.start_date < as_of) & (h.end_date.isnull() | (h.end_date >= as_of)))
    aggs: dict[str, ir.Value] = {}
    for p in PRODUCT_LABELS:
        aggs[f"start_{p}"] = ibis.ifelse(held["product"] == p, held.start_date, ibis.null()).min()
    return held.group_by("member_id").aggregate(**aggs)


def engagement(src: Sources, as_of: dt.date) -> ir.Table:
    x = src.interactions
    x = x.filter(x.exposed_at < ibis.timestamp(dt.datetime.combine(as_of, dt.time()), timezone="UTC"))
    x = x.mutate(days=ibis.date(as_of).delta(x.exposed_at.date(), unit="day"))
    answered = x.responded_at.notnull() & (x.responded_at.date() < as_of)
    positive = answered & x.response.isin(("clicked", "accepted"))
    aggs: dict[str, ir.Value] = {
        "app_exposures_3m": ((x.channel == "app") & (x.days <= 91)).cast("int64").sum(),
        "exposures_12m": (x.days <= 365).cast("int64").sum(),
        "dismissed_12m": ((x.days <= 365) & answered & (x.response == "dismissed")).cast("int64").sum(),
        "last_contact": x.exposed_at.date().max(),
    }
    for a in vocab.ACTION_IDS:
        recent = (x.action_id == a) & (x.days <= 730)
        aggs[f"exposures_{a}_24m"] = recent.cast("int64").sum()
        aggs[f"responses_{a}_24m"] = (recent & positive).cast("int64").sum()
    return x.group_by("member_id").aggregate(**aggs)


def moment_dates(src: Sources, as_of: dt.date, history_start: dt.date | None) -> ir.Table:
    events = mo.detect(src, as_of, history_start)
    aggs = {
        f"moment_{name}": ibis.ifelse(events.moment == name, events.date, ibis.null()).max()
        for name, *_rest in MOMENTS
        if name not in ("retirement_within_3y", "age_step")
    }
    return events.group_by("member_id").aggregate(**aggs)
