"""Finding a world's tables and extract date, and exposing each table to DuckDB.

A table is ``DIR/<table>.parquet``, ``DIR/<table>.csv`` (comma-separated, UTF-8,
header row, empty field = empty value) or ``DIR/<table>/`` holding ``*.parquet``
parts. ``DIR/ground_truth/`` is evaluation-only and never read. Every table gets
three views: ``src__<table>`` as stored, ``scan__<table>`` with each declared
column typed under its name and as stored under ``__raw__<column>``, and
``<table>`` with the typed declared columns only, which the rules read. A CSV
table is parsed once into Parquet in DuckDB's private temporary folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from features.contract.report import Violation
from features.contract.schemas import LOGICAL_TYPES, raw_name, typed_sql
from features.contract.sql import ident, literal
from features.tables import Table

EXTRACT_FILE = "extract.json"


@dataclass(frozen=True)
class Source:
    """Where one table of a world is stored."""

    table: Table
    paths: tuple[Path, ...]
    csv: bool
    label: str
    """What the report calls it: ``claims.parquet``, ``claims.csv`` or ``claims/``."""


def locate(data: Path, table: Table) -> Source | Violation:
    """The one place ``table`` is stored in ``data``, or the violation saying why not."""
    name = table.name
    found: list[Source] = []
    for suffix, is_csv in ((".parquet", False), (".csv", True)):
        path = data / f"{name}{suffix}"
        if path.is_file():
            found.append(Source(table, (path,), is_csv, path.name))
    folder = data / name
    if folder.is_dir():
        found.append(Source(table, tuple(sorted(folder.glob("*.parquet"))), False, f"{name}/"))
    expected = f"{name}.parquet, {name}.csv or a folder {name}/ of .parquet parts"
    if not found:
        return Violation(name, None, "table_missing", 0, (), f"expected {expected} in {data}; found none")
    if len(found) > 1:
        labels = ", ".join(s.label for s in found)
        return Violation(name, None, "table_ambiguous", 0, (), f"expected one of {expected}; found {labels}")
    if not found[0].paths:
        return Violation(
            name, None, "table_missing", 0, (), f"expected .parquet parts in {folder}; found none"
        )
    return found[0]


def resolve_extract_date(data: Path, override: dt.date | None) -> tuple[dt.date | None, Violation | None]:
    """The extract date: ``override`` if given, else ``extract.json``'s ``extract_date``."""
    if override is not None:
        return override, None
    path = data / EXTRACT_FILE
    expected = 'expected {"extract_date": "YYYY-MM-DD"} in extract.json or the --extract-date option'
    if not path.is_file():
        return None, _extract_violation(f"{expected}; found neither")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        value = raw["extract_date"]
        return dt.date.fromisoformat(value), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, _extract_violation(f"{expected}; the file cannot be read as JSON ({exc})")
    except (KeyError, TypeError, ValueError):
        got = repr(raw.get("extract_date")) if isinstance(raw, dict) else type(raw).__name__
        return None, _extract_violation(f"{expected}; got extract_date {got}")


def _extract_violation(message: str) -> Violation:
    return Violation(EXTRACT_FILE, None, "extract_date", 0, (), message)


def csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        return next(csv.reader(file), [])


def source_sql(source: Source, header: list[str] | None = None) -> str:
    """The DuckDB table function reading ``source``; CSV fields are read as text.

    CSV columns are given from the ``header`` rather than sniffed, so a row with
    too many or too few fields is an error naming its line.
    """
    if source.csv:
        columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header or ())
        return (
            f"read_csv({literal(str(source.paths[0]))}, auto_detect = false, header = true, "
            f"columns = {{{columns}}}, delim = ',', quote = '\"', escape = '\"')"
        )
    paths = ", ".join(literal(str(p)) for p in source.paths)
    return f"read_parquet([{paths}])"


def register(con: duckdb.DuckDBPyConnection, source: Source) -> dict[str, str | None] | Violation:
    """Create ``src__<table>``; return each stored column's DuckDB type (None for CSV text)."""
    view = ident(f"src__{source.table.name}")
    try:
        header = csv_header(source.paths[0]) if source.csv else None
        if source.csv and not header:
            return unreadable(source, ValueError("the file is empty: no header row"))
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source_sql(source, header)}")
        described = con.execute(f"DESCRIBE {view}").fetchall()
    except (duckdb.Error, OSError, UnicodeDecodeError, csv.Error) as exc:
        return unreadable(source, exc)
    return {str(row[0]): (None if source.csv else str(row[1])) for row in described}


def unreadable(source: Source, exc: Exception) -> Violation:
    lines = [line.strip()[:200] for line in str(exc).splitlines() if line.strip()][:3]
    reason = "; ".join(lines) or type(exc).__name__
    kind = "a readable CSV file with a header row" if source.csv else "readable Parquet"
    message = f"expected {source.label} to be {kind}; reading it failed: {reason}"
    return Violation(source.table.name, None, "unreadable", 0, (), message)


def structure_violations(source: Source, stored: dict[str, str | None]) -> list[Violation]:
    """Missing and unexpected columns (the contract is strict)."""
    name, declared = source.table.name, source.table.column_names
    if not set(declared) & set(stored):
        got = ", ".join(list(stored)[:6]) + (", ..." if len(stored) > 6 else "")
        message = f"expected the columns {', '.join(declared)} in {source.label}; found {got}"
        return [Violation(name, None, "unreadable", 0, (), message)]
    missing = [
        Violation(name, c, "column_missing", 0, (), f"expected column {c!r} in {source.label}; it is absent")
        for c in declared
        if c not in stored
    ]
    only = f"expected only the columns {', '.join(declared)}"
    extra = [
        Violation(name, c, "column_unexpected", 0, (), f"{only}; found extra column {c!r}")
        for c in stored
        if c not in declared
    ]
    return missing + extra


def create_views(con: duckdb.DuckDBPyConnection, table: Table, stored: dict[str, str | None]) -> None:
    """``scan__<table>`` (typed and as-stored columns) and ``<table>`` (typed columns only)."""
    items: list[str] = []
    for column in table.columns:
        if column.name in stored:
            items.append(f"{ident(column.name)} AS {ident(raw_name(column.name))}")
            items.append(
                f"{typed_sql(column.type, column.name, stored[column.name])} AS {ident(column.name)}"
            )
        else:
            items.append(f"CAST(NULL AS {LOGICAL_TYPES[column.type].sql}) AS {ident(column.name)}")
    scan = ident(f"scan__{table.name}")
    con.execute(
        f"CREATE OR REPLACE VIEW {scan} AS SELECT {', '.join(items)} FROM {ident(f'src__{table.name}')}"
    )
    typed = ", ".join(ident(c) for c in table.column_names)
    con.execute(f"CREATE OR REPLACE VIEW {ident(table.name)} AS SELECT {typed} FROM {scan}")


def stage_csv(con: duckdb.DuckDBPyConnection, source: Source) -> Violation | None:
    """Parse a CSV table once into Parquet in DuckDB's private temporary folder.

    Every later query of the table then reads typed Parquet instead of parsing
    the text again (a CSV table is read by up to seven rules).
    """
    spill = con.execute("SELECT current_setting('temp_directory')").fetchone()
    if not spill or not spill[0]:
        raise RuntimeError("DuckDB has no temp_directory to stage CSV tables in; see engine.connect")
    scan = ident(f"scan__{source.table.name}")
    staged = literal(str(Path(spill[0]) / f"staged-{source.table.name}.parquet"))
    try:
        con.execute(f"COPY (SELECT * FROM {scan}) TO {staged} (FORMAT parquet)")
    except duckdb.Error as exc:
        return unreadable(source, exc)
    con.execute(f"CREATE OR REPLACE VIEW {scan} AS SELECT * FROM read_parquet({staged})")
    return None
