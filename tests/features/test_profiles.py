"""Profiles as of a date: one row per active member, no leakage, behaviour that makes sense."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features import build
from features.build import build_profiles
from features.moments import Sources
from features.profiles import engagement
from features.registry import CARE_LABELS
from nba import vocab

AS_OF = dt.date(2025, 3, 1)

# What "a fact dated on or after the as-of date" is, per table: rows dated then are deleted,
# and later end dates are blanked (the fact "it ended" had not happened yet).
FUTURE_ROWS = {
    "members": "valid_from >= DATE",
    "beneficiaries": "start_date >= DATE",
    "claims": "payment_date >= DATE or care_date >= DATE",
    "holdings": "start_date >= DATE",
    "interactions": "exposed_at >= DATE::timestamptz",
    "consent_events": "captured_at >= DATE::timestamptz",
}
FUTURE_VALUES = {
    "members": ["membership_end", "valid_to"],
    "beneficiaries": ["end_date"],
    "holdings": ["end_date"],
}


def rewrite(world: Path, table: str, sql: str) -> None:
    path = world / f"{table}.parquet"
    con = duckdb.connect()
    result = con.sql(sql.replace("{src}", f"read_parquet('{path}')")).to_arrow_table()
    schema = pq.read_schema(path)
    pq.write_table(result.select(schema.names).cast(schema), path)


def erase_the_future(world: Path, day: dt.date) -> None:
    for table, condition in FUTURE_ROWS.items():
        where = condition.replace("DATE", f"DATE '{day}'")
        rewrite(world, table, f"select * from {{src}} where not ({where})")
    for table, columns in FUTURE_VALUES.items():
        sets = ", ".join(f"case when {c} >= DATE '{day}' then null else {c} end as {c}" for c in columns)
        rewrite(world, table, f"select * replace ({sets}) from {{src}}")
    rewrite(
        world,
        "members",
        "select * replace (case when membership_end is null then null else end_reason end as end_reason)"
        " from {src}",
    )
    rewrite(
        world,
        "interactions",
        f"""select * replace (
              case when responded_at >= DATE '{day}'::timestamptz then 'none' else response end as response,
              case when responded_at >= DATE '{day}'::timestamptz then null else responded_at end
                as responded_at) from {{src}}""",
    )


@pytest.fixture(scope="module")
def baseline(small_world: Path) -> pa.Table:
    return build_profiles(small_world, AS_OF)


def copy_world(world: Path, tmp_path: Path) -> Path:
    target = tmp_path / "world"
    shutil.copytree(world, target, ignore=shutil.ignore_patterns("ground_truth"))
    return target


def test_one_row_per_active_member(baseline: pa.Table, small_world: Path) -> None:
    active = duckdb.execute(
        f"""select count(distinct member_id) from read_parquet('{small_world}/members.parquet')
            where membership_start < DATE '{AS_OF}'
              and (membership_end is null or membership_end >= DATE '{AS_OF}')"""
    ).fetchone()
    ids = baseline.column("member_id").to_pylist()
    assert len(ids) == len(set(ids)) == active[0]  # type: ignore[index]


def test_erasing_every_fact_dated_on_or_after_the_date_changes_nothing(
    baseline: pa.Table, small_world: Path, tmp_path: Path
) -> None:
    world = copy_world(small_world, tmp_path)
    erase_the_future(world, AS_OF)
    assert build_profiles(world, AS_OF).equals(baseline)


def test_a_fact_dated_the_day_before_changes_the_profile(
    baseline: pa.Table, small_world: Path, tmp_path: Path
) -> None:
    world = copy_world(small_world, tmp_path)
    member, subscriber = first_subscriber(world)
    day_before = AS_OF - dt.timedelta(days=1)
    add_dental_claim(world, member, subscriber, day_before)
    after = build_profiles(world, AS_OF).to_pandas().set_index("member_id")
    before = baseline.to_pandas().set_index("member_id")
    assert after.loc[member, "months_since_dental"] == 0
    assert after.loc[member, "dental_count_3m"] == before.loc[member, "dental_count_3m"] + 1
    others = before.index != member
    assert after[others].equals(before[others])


def test_a_fact_dated_on_the_date_changes_nothing(
    baseline: pa.Table, small_world: Path, tmp_path: Path
) -> None:
    world = copy_world(small_world, tmp_path)
    member, subscriber = first_subscriber(world)
    add_dental_claim(world, member, subscriber, AS_OF)
    assert build_profiles(world, AS_OF).equals(baseline)


def first_subscriber(world: Path) -> tuple[int, int]:
    row = duckdb.execute(
        f"""select b.member_id, b.beneficiary_id from read_parquet('{world}/beneficiaries.parquet') b
            join read_parquet('{world}/members.parquet') m using (member_id)
            where b.role = 'subscriber' and m.membership_start < DATE '{AS_OF}' - 400
              and m.membership_end is null order by 1 limit 1"""
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def add_dental_claim(world: Path, member: int, beneficiary: int, day: dt.date) -> None:
    add_claim(world, member, beneficiary, day, "'dental', 'checkup', 30.0, 21.0, 6.0, 3.0, false")


def add_claim(world: Path, member: int, beneficiary: int, day: dt.date, line: str) -> None:
    """One more claim line: ``line`` lists category, act, the four amounts and is_reversal."""
    rewrite(
        world,
        "claims",
        f"""select * from {{src}} union all select {member * 1_000_000 + 999_999}, {member}, {beneficiary},
              DATE '{day}', DATE '{day}', {line}""",
    )


def test_sums_of_nothing_are_positive_zeros(baseline: pa.Table, small_world: Path, tmp_path: Path) -> None:
    # amounts are summed as whole cents in doubles: a lone reversal of a zero line (-0.0 euros)
    # must still give 0.0, the value an integer sum gives on every engine, not -0.0
    world = copy_world(small_world, tmp_path)
    member, subscriber = first_subscriber(world)
    before = baseline.to_pandas().set_index("member_id")
    cat = next(c for c in CARE_LABELS if before.loc[member, f"{c}_count_24m"] == 0)
    line = f"'{cat}', '{vocab.CARE_ACTS[cat][0]}', {', '.join(['-0.0::double'] * 4)}, true"
    add_claim(world, member, subscriber, AS_OF - dt.timedelta(days=1), line)
    after = build_profiles(world, AS_OF).to_pandas().set_index("member_id")
    assert after.loc[member, f"{cat}_count_3m"] == -1
    for column in (f"{cat}_spend_3m", f"{cat}_out_of_pocket_3m", f"{cat}_spend_24m"):
        assert after.loc[member, column] == 0.0
        assert math.copysign(1.0, after.loc[member, column]) == 1.0


def test_the_spark_plan_builds_the_same_profiles_on_duckdb(
    baseline: pa.Table, small_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one aggregation rather than a join per care category, and the sort done on the Arrow table
    monkeypatch.setitem(build.PLANS, "duckdb", build.PLANS["spark"])
    assert build_profiles(small_world, AS_OF).equals(baseline)


def test_exposure_windows_count_whole_days_between_utc_dates() -> None:
    # a window of 91 days holds exposures on or after the UTC midnight 91 days before the as-of date
    def at(day: dt.date, time: str) -> str:
        return f"{day.isoformat()} {time}+00:00"

    edge = AS_OF - dt.timedelta(days=91)
    exposed = [at(edge, "00:00:00"), at(edge - dt.timedelta(days=1), "23:59:59"), at(AS_OF, "00:00:00")]
    interactions = ibis.memtable(
        {
            "member_id": [1, 1, 1],
            "action_id": ["eye_exam"] * 3,
            "channel": ["app"] * 3,
            "exposed_at": exposed,
            "response": ["clicked", "clicked", "none"],
            "responded_at": [at(AS_OF - dt.timedelta(days=1), "23:59:59"), at(AS_OF, "00:00:00"), None],
        },
        schema={"member_id": "int64", "action_id": "string", "channel": "string",
                "exposed_at": "timestamp('UTC')", "response": "string", "responded_at": "timestamp('UTC')"},
    )  # fmt: skip
    src = Sources(members=None, beneficiaries=None, claims=None, holdings=None, interactions=interactions)
    with build.connect("duckdb") as con:
        row = con.to_pyarrow(engagement(src, AS_OF)).to_pylist()[0]
    assert row["app_exposures_3m"] == 1  # the one at midnight 91 days before; the exposure on AS_OF is later
    assert row["exposures_eye_exam_24m"] == 2
    assert row["responses_eye_exam_24m"] == 1  # the other answer came on the as-of date
    assert row["last_contact"] == edge


def test_time_without_a_dental_visit_grows_with_the_as_of_date(small_world: Path) -> None:
    later_day = AS_OF + dt.timedelta(days=92)
    early = build_profiles(small_world, AS_OF).to_pandas().set_index("member_id")
    later = build_profiles(small_world, later_day).to_pandas().set_index("member_id")
    paid_between = duckdb.execute(
        f"""select distinct c.member_id from read_parquet('{small_world}/claims.parquet') c
            join read_parquet('{small_world}/beneficiaries.parquet') b using (beneficiary_id)
            where b.role = 'subscriber' and c.care_category = 'dental'
              and c.payment_date >= DATE '{AS_OF}' and c.payment_date < DATE '{later_day}'"""
    ).fetchall()
    same_facts = early.index.intersection(later.index).difference([r[0] for r in paid_between])
    seen = early.loc[same_facts, "months_since_dental"].notna()
    growth = (
        later.loc[same_facts, "months_since_dental"][seen]
        - early.loc[same_facts, "months_since_dental"][seen]
    )
    assert len(growth) > 100
    assert growth.between(2, 4).all()  # 92 days is three months, give or take a day of rounding


def test_the_calendar_month_is_the_as_of_dates_for_everyone(baseline: pa.Table, small_world: Path) -> None:
    assert set(baseline.column("month_of_year").to_pylist()) == {AS_OF.month}
    autumn = build_profiles(small_world, dt.date(2024, 10, 1))
    assert set(autumn.column("month_of_year").to_pylist()) == {10}
