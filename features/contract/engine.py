"""``validate_world``: run every contract rule over a world folder with DuckDB.

Each table is read once for its column checks and row rules (one aggregate
scan computing every rule's failure count), then keys, foreign keys and
cross-table rules run as SQL queries. Example rows are fetched only for the
rules that fail. Nothing is loaded into pandas and the input is only read.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from features.contract.report import MAX_EXAMPLES, Report, Violation, received
from features.contract.rules import DERIVED, ROW_RULES, QueryRule, RowRule, query_rules
from features.contract.schemas import column_rules, raw_name
from features.contract.sources import (
    Source,
    create_views,
    locate,
    register,
    resolve_extract_date,
    stage_csv,
    structure_violations,
    unreadable,
)
from features.contract.sql import ident, literal
from features.tables import TABLES, Table
from nba.errors import DataError

SQL_MISTAKES = (duckdb.BinderException, duckdb.ParserException, duckdb.CatalogException)
"""Errors of a rule's SQL rather than of the data: never reported as an unreadable file."""


@dataclass
class TableState:
    """What is known about one table after reading it."""

    rows: int = 0
    read: bool = False
    """Its file could be scanned."""
    complete: bool = False
    """Read, with every declared column: row and cross-table rules can run on it."""


def validate_world(data: Path, extract_date: dt.date | None = None) -> Report:
    """Check the six source tables in ``data`` against the contract; never modifies them.

    ``extract_date`` overrides ``data/extract.json``. Raises :class:`DataError`
    only when ``data`` is not a folder; every problem in the data is a
    :class:`Violation` of the returned report.
    """
    if not data.is_dir():
        raise DataError(f"expected a folder holding the source tables; {data} is not a folder")
    extract, problem = resolve_extract_date(data, extract_date)
    report = Report(data=data, extract_date=extract)
    if problem is not None:
        report.violations.append(problem)
        report.skipped.append("rules comparing dates with the extract date: no extract date")
    with connect(extract) as con:
        states = {t.name: check_table(con, data, t, report) for t in TABLES.values()}
        create_derived(con, states)
        for rule in query_rules():
            if runnable(rule.reads, rule.needs_extract, states, extract):
                report.violations.extend(run_query_rule(con, rule, extract))
    report.rows = {name: s.rows for name, s in states.items() if s.read}
    note_skipped(report, states)
    return report


@contextmanager
def connect(extract: dt.date | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB spilling to a private temporary folder, never to the input."""
    with tempfile.TemporaryDirectory(prefix="nba-validate-") as spill:
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET parquet_metadata_cache = true")
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET temp_directory = {literal(spill)}")
            if extract is not None:
                con.execute("SET VARIABLE extract_date = ?::DATE", [extract])
                con.execute("SET VARIABLE extract_end = (?::DATE + 1)::TIMESTAMPTZ", [extract])
            yield con
        finally:
            con.close()


def check_table(con: duckdb.DuckDBPyConnection, data: Path, table: Table, report: Report) -> TableState:
    """Locate and read ``table``; report its structure, column and row-rule violations."""
    state = TableState()
    source = locate(data, table)
    if isinstance(source, Violation):
        report.violations.append(source)
        return state
    stored = register(con, source)
    if isinstance(stored, Violation):
        report.violations.append(stored)
        return state
    structure = structure_violations(source, stored)
    report.violations.extend(structure)
    if any(v.column is None for v in structure):
        return state
    create_views(con, table, stored)
    staging = stage_csv(con, source) if source.csv else None
    if staging is not None:
        report.violations.append(staging)
        return state
    state.complete = all(c in stored for c in table.column_names)  # extra columns do not matter
    rules = column_rules(table, stored)
    if state.complete:
        rules += [r for r in ROW_RULES if r.table == table.name and runnable_row(r, report)]
    present = [c for c in table.column_names if c in stored]
    scanned = scan_table(con, source, present, rules, report.extract_date)
    if isinstance(scanned, Violation):
        report.violations.append(scanned)
        state.complete = False
        return state
    state.rows, violations = scanned
    state.read = True
    report.violations.extend(violations)
    return state


def runnable_row(rule: RowRule, report: Report) -> bool:
    return report.extract_date is not None or not rule.needs_extract


def scan_table(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    present: Sequence[str],
    rules: Sequence[RowRule],
    extract: dt.date | None,
) -> tuple[int, list[Violation]] | Violation:
    """Count every rule's failing rows in one scan; fetch examples for those that fail.

    ``present`` names the declared columns found in the file, shown in examples.
    """
    scan = ident(f"scan__{source.table.name}")
    counts = "".join(f", count_if({r.fails})" for r in rules)
    try:
        row = con.execute(f"SELECT count(*){counts} FROM {scan}").fetchone() or (0,)
        violations = [
            row_violation(con, source.table, present, rule, n, extract)
            for rule, n in zip(rules, row[1:], strict=True)
            if n
        ]
    except duckdb.Error as exc:
        if isinstance(exc, SQL_MISTAKES):
            raise
        return unreadable(source, exc)
    return int(row[0]), violations


def row_violation(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    present: Sequence[str],
    rule: RowRule,
    n: int,
    extract: dt.date | None,
) -> Violation:
    """The violation of a row rule failed by ``n`` rows; examples show rows as stored."""
    shown = ", ".join(f"{ident(raw_name(c))} AS {ident(c)}" for c in present)
    order = ", ".join(ident(c) for c in table.key)
    sql = (
        f"SELECT {shown} FROM {ident(f'scan__{table.name}')} WHERE {rule.fails} "
        f"ORDER BY {order} LIMIT {MAX_EXAMPLES}"
    )
    examples = fetch_dicts(con, sql)
    return make_violation(rule.table, rule.column, rule.rule, n, examples, rule.expected, extract)


def create_derived(con: duckdb.DuckDBPyConnection, states: dict[str, TableState]) -> None:
    for name, (sql, reads) in DERIVED.items():
        if all(states[t].complete for t in reads):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS {sql}")


def runnable(
    reads: tuple[str, ...], needs_extract: bool, states: dict[str, TableState], extract: dt.date | None
) -> bool:
    return all(states[t].complete for t in reads) and (extract is not None or not needs_extract)


def run_query_rule(
    con: duckdb.DuckDBPyConnection, rule: QueryRule, extract: dt.date | None
) -> list[Violation]:
    """Count the rows ``rule.query`` returns; fetch three examples when there are any."""
    try:
        row = con.execute(f"SELECT {rule.count} FROM ({rule.query})").fetchone()
        n = int(row[0] or 0) if row else 0
        if not n:
            return []
        examples = fetch_dicts(con, f"SELECT * FROM ({rule.query}) ORDER BY ALL LIMIT {MAX_EXAMPLES}")
    except duckdb.Error as exc:
        raise DataError(f"checking rule {rule.rule} on {rule.table}.{rule.column} failed: {exc}") from exc
    return [
        make_violation(rule.table, rule.column, rule.rule, n, examples, rule.expected, extract, rule.unit)
    ]


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[dict[str, Any], ...]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description or ()]
    return tuple(dict(zip(names, row, strict=True)) for row in cursor.fetchall())


def make_violation(
    table: str,
    column: str,
    rule: str,
    n: int,
    examples: tuple[dict[str, Any], ...],
    expected: str,
    extract: dt.date | None,
    unit: str = "rows",
) -> Violation:
    """A violation whose message says what was expected and what was received."""
    if extract is not None:
        expected = expected.replace("the extract date", f"the extract date {extract.isoformat()}")
    got = received(column, examples)
    message = f"expected {expected}" + (f"; received {column} = {got}" if got else "")
    return Violation(table, column, rule, int(n), examples, message, unit)


def note_skipped(report: Report, states: dict[str, TableState]) -> None:
    """Say which tables' row and cross-table rules could not run."""
    incomplete = [name for name, s in states.items() if not s.complete]
    if incomplete:
        report.skipped.append(
            f"row, key and cross-table rules reading {', '.join(incomplete)}: "
            "fix the table-level violations first"
        )
