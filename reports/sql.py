"""SQL over the audit log's JSON records, written once for SQLite and PostgreSQL.

Each audit record is canonical JSON text in ``audit_log.record``. The few places where the two
databases differ (reading a JSON field, iterating a JSON array or object, the decision time) are
fragments of :class:`Sql`; the queries that use them read the same on both, and the page shows
the exact text that ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class Sql:
    """JSON fragments for one dialect: ``sqlite`` (JSON1) or ``postgresql`` (jsonb)."""

    dialect: str

    @classmethod
    def of(cls, engine: Engine | Connection) -> Sql:
        name = engine.dialect.name
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"reports read SQLite or PostgreSQL; got the {name!r} dialect")
        return cls(name)

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    def field(self, source: str, path: str) -> str:
        """A scalar of a JSON value (``path`` dotted): a number on SQLite, text on PostgreSQL."""
        if self.pg:
            return f"({source})::jsonb #>> '{{{path.replace('.', ',')}}}'"
        return f"json_extract({source}, '$.{path}')"

    def rec(self, path: str) -> str:
        """A field of the audit record ``a``."""
        return self.field("a.record", path)

    def val(self, alias: str, path: str) -> str:
        """A field of the JSON element ``alias`` produced by :meth:`each`."""
        return self.field(f"{alias}.value", path)

    def int_val(self, alias: str, path: str) -> str:
        """An integer field of the JSON element ``alias`` (event ids)."""
        text = self.val(alias, path)
        return f"({text})::bigint" if self.pg else text

    def each(self, source: str, path: str, alias: str) -> str:
        """Join one row per element of the array at ``path`` of ``source`` (column ``alias.value``)."""
        if self.pg:
            inner = f"({source})::jsonb #> '{{{path.replace('.', ',')}}}'"
            return f"CROSS JOIN LATERAL jsonb_array_elements({inner}) AS {alias}(value)"
        return f"CROSS JOIN json_each({source}, '$.{path}') AS {alias}"

    def items(self, source: str, path: str, alias: str) -> str:
        """Join one row per member of the object at ``path`` (``alias.key``, ``alias.value``)."""
        if self.pg:
            inner = f"({source})::jsonb #> '{{{path.replace('.', ',')}}}'"
            return f"CROSS JOIN LATERAL jsonb_each({inner}) AS {alias}(key, value)"
        return f"CROSS JOIN json_each({source}, '$.{path}') AS {alias}"

    def scalar(self, alias: str) -> str:
        """The element of :meth:`each` as an integer (event ids)."""
        return f"({alias}.value)::bigint" if self.pg else f"{alias}.value"

    def text(self, alias: str) -> str:
        """The element of :meth:`each` as text (action ids)."""
        return f"({alias}.value #>> '{{}}')" if self.pg else f"{alias}.value"

    def length(self, source: str, path: str) -> str:
        if self.pg:
            return f"jsonb_array_length(({source})::jsonb #> '{{{path.replace('.', ',')}}}')"
        return f"json_array_length({source}, '$.{path}')"

    def number(self, value: int) -> str:
        """A JSON number as :meth:`field` returns it."""
        return f"'{value}'" if self.pg else str(value)

    def true(self) -> str:
        return "'true'" if self.pg else "1"

    def decided_at(self) -> str:
        """The record's ``time`` (UTC ISO 8601, as the service writes it) comparable with timestamps.

        SQLite keeps timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` text; the record's time
        ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`` is rewritten to that form, to the microsecond.
        """
        if self.pg:
            return "(a.record::jsonb ->> 'time')::timestamptz"
        t = "json_extract(a.record, '$.time')"
        return (
            f"CASE WHEN substr({t}, 20, 1) = '.'\n"
            f"              THEN replace(substr({t}, 1, 26), 'T', ' ')\n"
            f"              ELSE replace(substr({t}, 1, 19), 'T', ' ') || '.000000' END"
        )


def run(engine: Engine, query: str, **params: Any) -> list[Any]:
    """All rows of ``query`` (text with ``:name`` parameters)."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params))
