"""What a world looks like next to the public figures it is calibrated to.

Computed with DuckDB straight from the Parquet files, so it scales with the world.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from features.synthetic import calibration as cal


@dataclass
class WorldSummary:
    members: int
    households_by_type: dict[str, int]
    people: int
    person_years: float
    claims: int
    spend_per_person: dict[str, float]
    calibration: dict[str, float] = field(default_factory=lambda: dict(cal.SPEND_PER_PERSON))
    consent_shares: dict[str, float] = field(default_factory=dict)
    life_events_per_year: dict[str, float] = field(default_factory=dict)
    no_dental_visit_share: float = 0.0
    births_per_1000: float = 0.0
    retirement_ages: list[float] = field(default_factory=list)
    prevention_rates: dict[str, float] = field(default_factory=dict)
    payer_shares: dict[str, float] = field(default_factory=dict)


def _window(con: duckdb.DuckDBPyConnection, data: Path) -> tuple[str, str, float]:
    manifest = json.loads((data / "extract.json").read_text())
    end = manifest["extract_date"]
    months = int(manifest["generator"]["months"])
    start = con.execute(
        f"select (date_trunc('month', date '{end}') - interval {months - 1} month)::date"
    ).fetchone()[0]  # type: ignore[index]
    years = con.execute(f"select (date '{end}' - date '{start}' + 1) / 365.25").fetchone()[0]  # type: ignore[index]
    return str(start), end, float(years)


def summarize(data: Path) -> WorldSummary:
    data = Path(data)
    con = duckdb.connect()
    for name in ("members", "beneficiaries", "claims", "consent_events"):
        con.execute(f"create view {name} as select * from read_parquet('{data / name}.parquet')")
    start, end, years = _window(con, data)
    con.execute(
        f"""create view cover as select *, greatest(start_date, date '{start}') s,
            least(coalesce(end_date, date '{end}' + 1), date '{end}' + 1) e from beneficiaries"""
    )
    person_years = con.execute("select sum(greatest(e - s, 0)) / 365.25 from cover").fetchone()[0]  # type: ignore[index]
    spend = dict(
        con.execute(
            f"""select care_category, sum(total_cost) / {person_years} from claims
                where care_date >= date '{start}' group by 1 order by 1"""
        ).fetchall()
    )
    return WorldSummary(
        members=con.execute("select count(distinct member_id) from members").fetchone()[0],  # type: ignore[index]
        households_by_type=_households(con, end),
        people=con.execute("select count(*) from beneficiaries").fetchone()[0],  # type: ignore[index]
        person_years=float(person_years),
        claims=con.execute("select count(*) from claims").fetchone()[0],  # type: ignore[index]
        spend_per_person={k: float(v) for k, v in spend.items()},
        consent_shares=_consent(con, end),
        life_events_per_year=_events(data, years),
        no_dental_visit_share=_no_dental(con, end),
        births_per_1000=_births(con, start, person_years),
        retirement_ages=_retirements(data),
        prevention_rates=_prevention(con, end),
        payer_shares=_payers(con, start),
    )


def _households(con: duckdb.DuckDBPyConnection, end: str) -> dict[str, int]:
    rows = con.execute(
        f"""with h as (select member_id,
                 count(*) filter (role = 'spouse') spouses, count(*) filter (role = 'child') kids
               from cover where s <= date '{end}' and e > date '{end}' group by 1)
            select case when spouses > 0 and kids > 0 then 'couple with children'
                        when spouses > 0 then 'couple' when kids > 0 then 'single parent'
                        else 'alone' end, count(*) from h group by 1 order by 2 desc"""
    ).fetchall()
    return {k: int(v) for k, v in rows}


def _consent(con: duckdb.DuckDBPyConnection, end: str) -> dict[str, float]:
    rows = con.execute(
        f"""with latest as (
              select member_id, purpose, arg_max(decision, effective_from) decision,
                     arg_max(expires_at, effective_from) expires
              from consent_events where channel = 'all' group by 1, 2),
            n as (select count(distinct member_id) n from members)
            select purpose || ': ' || decision, count(*) / any_value(n.n) from latest, n
            where expires is null or expires > timestamp '{end}'
            group by 1 order by 1"""
    ).fetchall()
    return {k: float(v) for k, v in rows}


def _events(data: Path, years: float) -> dict[str, float]:
    rows = duckdb.execute(
        f"""select event, count(*) / {years} from read_parquet('{data}/ground_truth/life_events.parquet')
            group by 1 order by 1"""
    ).fetchall()
    return {k: float(v) for k, v in rows}


def _no_dental(con: duckdb.DuckDBPyConnection, end: str) -> float:
    """Share of adults covered all of the last 12 months with no dental line in them."""
    return float(
        con.execute(
            f"""with adults as (select beneficiary_id from cover
                  where s <= date '{end}' - interval 12 month and e > date '{end}'
                    and birth_date <= date '{end}' - interval 30 year),
                seen as (select distinct beneficiary_id from claims
                  where care_category = 'dental' and care_date > date '{end}' - interval 12 month)
                select 1 - count(seen.beneficiary_id) / count(*) from adults
                left join seen using (beneficiary_id)"""
        ).fetchone()[0]  # type: ignore[index]
    )


def _births(con: duckdb.DuckDBPyConnection, start: str, person_years: float) -> float:
    births = con.execute(
        f"select count(*) from beneficiaries where role = 'child' and birth_date >= date '{start}'"
    ).fetchone()[0]  # type: ignore[index]
    return 1000.0 * births / person_years


def _retirements(data: Path) -> list[float]:
    rows = duckdb.execute(
        f"""select datediff('day', m.birth_date, e.event_date) / 365.25
            from read_parquet('{data}/ground_truth/life_events.parquet') e
            join (select distinct member_id, birth_date from read_parquet('{data}/members.parquet')) m
            using (member_id) where event = 'retirement'"""
    ).fetchall()
    return [float(r[0]) for r in rows]


def _prevention(con: duckdb.DuckDBPyConnection, end: str) -> dict[str, float]:
    """Take-up among the eligible covered all of the look-back period."""
    specs = {
        "breast screening, women 50-74, 2 years": ("mammography", 24, "sex = 'F'", 50, 74),
        "colorectal screening, 50-74, 2 years": ("colorectal_test", 24, "true", 50, 74),
        "cervical screening, women 25-65, 3 years": ("cervical_smear", 36, "sex = 'F'", 25, 65),
        "flu vaccination, 65+, 1 year": ("flu", 12, "true", 65, 120),
    }
    out = {}
    for label, (act, months, cond, lo, hi) in specs.items():
        out[label] = float(
            con.execute(
                f"""with pop as (select beneficiary_id from cover
                      where s <= date '{end}' - interval {months} month + interval 1 day
                        and e > date '{end}' and {cond}
                        and date_diff('year', birth_date, date '{end}') between {lo} and {hi}),
                    did as (select distinct beneficiary_id from claims where act = '{act}'
                      and care_date > date '{end}' - interval {months} month)
                    select count(did.beneficiary_id) / greatest(count(*), 1) from pop
                    left join did using (beneficiary_id)"""
            ).fetchone()[0]  # type: ignore[index]
        )
    return out


def _payers(con: duckdb.DuckDBPyConnection, start: str) -> dict[str, float]:
    row = con.execute(
        f"""select sum(social_security_paid) / sum(total_cost), sum(mutuelle_paid) / sum(total_cost),
                   sum(out_of_pocket) / sum(total_cost) from claims where care_date >= date '{start}'"""
    ).fetchone()
    assert row is not None
    return {"social security": row[0], "mutuelle": row[1], "out of pocket": row[2]}
