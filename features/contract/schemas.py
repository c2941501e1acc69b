"""Column contract: pandera schemas built from ``features.tables``, and their SQL form.

:func:`pandera_schema` validates a DataFrame of a source table held in memory.
``nba validate`` does not run pandera batch by batch over the files: on the
claims of a 1,000,000-member world (64 million lines, ``benchmarks/contract.py``,
a shared 2-core machine) pandera on Parquet record batches checked 0.55 million
lines a second; the same checks in one DuckDB scan 14 to 35 million when every
value is evaluated (26 to 62 times more), and took 0.2 s in all when Parquet
statistics answered them. So :func:`column_rules` compiles the pandera schema
into SQL predicates that DuckDB evaluates for a whole table in one pass, and a
test checks that both engines flag the same cells.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandera.pandas as pa
from pandera.engines import pandas_engine

from features.contract.rules import RowRule
from features.contract.sql import ident, literal, not_in_sql
from features.tables import Column, Table

_INT_PATTERN: Final = "'-?[0-9]+'"
_DATE_PATTERN: Final = "'[0-9]{4}-[0-9]{2}-[0-9]{2}'"
_TIMESTAMP_PATTERN: Final = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}'"


@dataclass(frozen=True)
class LogicalType:
    """How one logical type of ``features.tables`` is stored, parsed and checked."""

    sql: str
    """DuckDB type the typed view casts the column to."""
    stored: tuple[str, ...]
    """DuckDB types a Parquet column of this type may be stored as."""
    pandas: Any
    """dtype pandera checks in memory."""
    text: str
    """How the doc and messages name it."""
    parse: Callable[[str], str]
    """SQL parsing CSV text strictly: NULL when the text is not a valid value."""


LOGICAL_TYPES: Final[dict[str, LogicalType]] = {
    "int": LogicalType(
        "BIGINT",
        ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"),
        "int64", "integer",
        lambda c: f"CASE WHEN regexp_full_match({c}, {_INT_PATTERN}) "
        f"THEN TRY_CAST({c} AS BIGINT) END",
    ),
    "float": LogicalType(
        "DOUBLE", ("DOUBLE", "FLOAT", "DECIMAL"), "float64", "number",
        lambda c: f"TRY_CAST({c} AS DOUBLE)",
    ),
    "str": LogicalType("VARCHAR", ("VARCHAR",), str, "text", lambda c: c),
    "bool": LogicalType(
        "BOOLEAN", ("BOOLEAN",), "bool", "true or false",
        lambda c: f"CASE lower({c}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END",
    ),
    "date": LogicalType(
        "DATE", ("DATE",), pandas_engine.Date, "date YYYY-MM-DD",
        lambda c: f"CASE WHEN regexp_full_match({c}, {_DATE_PATTERN}) "
        f"THEN TRY_CAST({c} AS DATE) END",
    ),
    "timestamp": LogicalType(
        "TIMESTAMPTZ", ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS"),
        "datetime64[us, UTC]", "UTC timestamp YYYY-MM-DD HH:MM:SS+00:00",
        lambda c: f"CASE WHEN regexp_matches({c}, {_TIMESTAMP_PATTERN}) "
        f"THEN TRY_CAST({c} AS TIMESTAMPTZ) END",
    ),
}  # fmt: skip
"""Logical type (``features.tables.ARROW_TYPES`` keys) -> storage and checks."""

COLUMN_CHECKS: Final[dict[str, tuple[pa.Check, ...]]] = {
    "postcode": (pa.Check.str_length(5, 5),),
}
"""Checks a column carries in every table it appears in, beyond its declaration."""


def pandera_schema(table: Table) -> pa.DataFrameSchema:
    """The pandera schema of ``table``: dtypes, nullability, allowed values, minimums, key."""
    return pa.DataFrameSchema(
        {column.name: pandera_column(column) for column in table.columns},
        name=table.name,
        description=table.description,
        strict=True,
        unique=list(table.key),
    )


def pandera_column(column: Column) -> pa.Column:
    """The pandera column of one declared column (a fresh copy: callers may modify it)."""
    return copy.deepcopy(_pandera_column(column))


@functools.cache
def _pandera_column(column: Column) -> pa.Column:
    checks: list[pa.Check] = []
    if column.allowed is not None:
        checks.append(pa.Check.isin(column.allowed))
    if column.min_value is not None:
        checks.append(pa.Check.ge(column.min_value))
    checks.extend(COLUMN_CHECKS.get(column.name, ()))
    return pa.Column(
        LOGICAL_TYPES[column.type].pandas,
        checks=checks,
        nullable=column.nullable,
        description=column.description,
        metadata={"logical_type": column.type},
    )


# --- the same schema as SQL -------------------------------------------------------------


def raw_name(column: str) -> str:
    """Name of the column as stored, next to its typed version, in a table's scan view."""
    return f"__raw__{column}"


def is_stored_as(logical: str, stored: str) -> bool:
    """Whether a Parquet column of DuckDB type ``stored`` holds values of ``logical`` type."""
    base = stored.split("(")[0].strip()
    return base == '"NULL"' or base in LOGICAL_TYPES[logical].stored


def typed_sql(logical: str, column: str, stored: str | None) -> str:
    """SQL reading a stored column as its logical type; ``stored`` None means CSV text."""
    kind = LOGICAL_TYPES[logical]
    raw = ident(column)
    if stored is None:
        return kind.parse(raw)
    if is_stored_as(logical, stored):
        return f"CAST({raw} AS {kind.sql})"
    return f"TRY_CAST({raw} AS {kind.sql})"


def column_rules(table: Table, stored: Mapping[str, str | None]) -> list[RowRule]:
    """SQL form of :func:`pandera_schema`'s columns, for those present in a table's file.

    ``stored`` maps each present column to its DuckDB type, or None for CSV text.
    The predicates read a scan view holding each column typed under its name and
    as stored under :func:`raw_name`.
    """
    rules: list[RowRule] = []
    for declared in table.columns:
        if declared.name not in stored:
            continue
        name, column = declared.name, _pandera_column(declared)
        logical = (column.metadata or {})["logical_type"]
        rules.extend(_type_rules(table.name, name, logical, stored[name]))
        if not column.nullable:
            rules.append(_not_null_rule(table.name, name, logical))
        rules.extend(_check_rule(table.name, name, check) for check in column.checks)
    return rules


def _type_rules(table: str, column: str, logical: str, stored: str | None) -> list[RowRule]:
    kind = LOGICAL_TYPES[logical]
    raw, typed = ident(raw_name(column)), ident(column)
    if stored is None:
        return [RowRule(table, column, "type", f"a {kind.text}", f"{raw} IS NOT NULL AND {typed} IS NULL")]
    if is_stored_as(logical, stored):
        return []
    expected = f"a {kind.text} column ({kind.sql}); the file stores {stored}"
    return [RowRule(table, column, "type", expected, f"{raw} IS NOT NULL")]


def _not_null_rule(table: str, column: str, logical: str) -> RowRule:
    fails = f"{ident(raw_name(column))} IS NULL"
    if logical == "float":
        fails += f" OR isnan({ident(column)})"
    return RowRule(table, column, "not_null", "a value: the column is not nullable", fails)


def _check_rule(table: str, column: str, check: pa.Check) -> RowRule:
    """One pandera check as SQL; raises if the check has no SQL form yet."""
    typed, stats = ident(column), check.statistics or {}
    expected = check_text(check)
    if check.name == "isin":
        return RowRule(table, column, "allowed_values", expected, not_in_sql(typed, stats["allowed_values"]))
    if check.name == "greater_than_or_equal_to":
        low = literal(stats["min_value"])
        return RowRule(table, column, "min_value", expected, f"{typed} < {low}")
    if check.name == "str_length":
        low, high = stats["min_value"], stats["max_value"]
        fails = f"length({typed}) < {low} OR length({typed}) > {high}"
        return RowRule(table, column, "length", expected, fails)
    raise NotImplementedError(
        f"pandera check {check.name!r} on {table}.{column} has no SQL form; "
        "add one in features.contract.schemas._check_rule"
    )


def check_text(check: pa.Check, limit: int | None = 8) -> str:
    """What a pandera check expects, in words: ``one of 'F', 'M'``, ``a value ≥ 1``."""
    stats = check.statistics or {}
    if check.name == "isin":
        return f"one of {describe_values(tuple(stats['allowed_values']), limit)}"
    if check.name == "greater_than_or_equal_to":
        return f"a value ≥ {stats['min_value']}"
    if check.name == "str_length":
        low, high = stats["min_value"], stats["max_value"]
        return f"exactly {low} characters" if low == high else f"{low} to {high} characters"
    return str(check)


def describe_values(values: tuple[object, ...], limit: int | None = 8) -> str:
    """``'F', 'M'``; lists longer than ``limit`` are cut, with their length."""
    if limit is None or len(values) <= limit:
        return ", ".join(repr(v) for v in values)
    return ", ".join(repr(v) for v in values[:limit]) + f", ... ({len(values)} values)"
