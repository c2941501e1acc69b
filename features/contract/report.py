"""What ``nba validate`` found: one :class:`Violation` per failing rule, gathered in a :class:`Report`."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from features.tables import TABLES

MAX_EXAMPLES = 3
"""Example rows kept per violation."""


@dataclass(frozen=True)
class Violation:
    """One contract rule broken by ``n_rows`` rows (or files, members...) of one table.

    ``column`` is ``None`` for rules about a whole table (missing, unreadable).
    ``examples`` holds up to three failing rows as ``{column: value}``.
    ``message`` says what was expected and what was received.
    """

    table: str
    column: str | None
    rule: str
    n_rows: int
    examples: tuple[dict[str, Any], ...] = ()
    message: str = ""
    unit: str = "rows"

    @property
    def where(self) -> str:
        """``table.column``, or just ``table`` for a table-level rule."""
        return self.table if self.column is None else f"{self.table}.{self.column}"

    @property
    def count(self) -> str:
        """``3 rows``, ``1 row``, ``2 members``; empty for a table-level rule."""
        if not self.n_rows:
            return ""
        unit = self.unit[:-1] if self.n_rows == 1 and self.unit.endswith("s") else self.unit
        return f"{self.n_rows:,} {unit}"

    def __str__(self) -> str:
        count = f", {self.count}" if self.count else ""
        return f"{self.where}: rule {self.rule}{count}: {self.message}"


@dataclass
class Report:
    """The outcome of validating one world folder."""

    data: Path
    extract_date: dt.date | None
    rows: dict[str, int] = field(default_factory=dict)
    """Rows read per table, for the tables that could be read."""
    violations: list[Violation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Rules that could not run, and why (a missing table, no extract date...)."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary_line(self) -> str:
        """``ok: 6 tables, 1,234,567 rows, 0 violations (extract date 2025-12-31)``."""
        n = len(self.violations)
        extract = f"extract date {self.extract_date.isoformat()}" if self.extract_date else "no extract date"
        return (
            f"{'ok' if self.ok else 'failed'}: {len(self.rows)} tables, "
            f"{sum(self.rows.values()):,} rows, {n} violation{'' if n == 1 else 's'} ({extract})"
        )

    def render(self) -> str:
        """A readable report: one block per violation, then what was not checked.

        Values from the data are escaped so the text prints verbatim through Rich.
        """
        lines = [f"Data contract check of {self.data}", ""]
        for violation in sorted(self.violations, key=_table_order):
            lines.extend(render_violation(violation))
            lines.append("")
        if self.skipped:
            lines.append("Not checked:")
            lines.extend(f"  - {reason}" for reason in self.skipped)
            lines.append("")
        lines.append(self.summary_line())
        return "\n".join(lines)


def render_violation(violation: Violation) -> list[str]:
    """The lines of one violation's block."""
    count = f" ({violation.count})" if violation.count else ""
    lines = [f"{violation.where}: rule {violation.rule}{count}"]
    lines.append(f"    {escape(violation.message)}")
    for i, row in enumerate(violation.examples, start=1):
        lines.append(f"    example {i}: {escape(format_row(row))}")
    return lines


def format_row(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={format_value(value)}" for name, value in row.items())


def format_value(value: Any) -> str:
    """A value as a person reads it: dates in ISO form, text quoted, missing as ``null``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null" if value is None else "NaN"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def received(column: str | None, examples: Sequence[Mapping[str, Any]]) -> str:
    """The failing values of ``column`` (or of each column of a key) in the example rows."""
    if column is None or not examples:
        return ""
    names = [name.strip() for name in column.split(",")]
    values = []
    for row in examples:
        shown = [format_value(row.get(name)) for name in names if name in row]
        if shown:
            values.append(shown[0] if len(shown) == 1 else f"({', '.join(shown)})")
    return ", ".join(dict.fromkeys(values))


def _table_order(violation: Violation) -> int:
    names = list(TABLES)
    return names.index(violation.table) + 1 if violation.table in names else 0
