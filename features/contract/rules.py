"""Row, key, foreign-key and cross-table rules of the data contract, declared once as SQL.

A :class:`RowRule` is a condition on each row of one table; all of a table's row
rules run in one DuckDB scan. A :class:`QueryRule` is a query returning the
failing rows (or groups of rows) and may read several tables. Both refer to the
typed views named after the tables (see ``sources``), so they run unchanged on
Parquet and CSV. ``docs/data-contract.md`` lists them from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from features.contract.sql import ident, literal, not_in_sql
from features.tables import TABLES, Table
from nba import vocab

EXTRACT_DATE: Final = "getvariable('extract_date')"
"""SQL for the extract date (a DATE)."""
EXTRACT_END: Final = "getvariable('extract_end')"
"""SQL for the end of the extract date: midnight UTC the day after (a TIMESTAMPTZ)."""


@dataclass(frozen=True)
class RowRule:
    """A condition every row of ``table`` must meet; ``fails`` is SQL true on a failing row."""

    table: str
    column: str
    rule: str
    expected: str
    fails: str
    needs_extract: bool = False


@dataclass(frozen=True)
class QueryRule:
    """A rule checked by ``query``, which returns the failing rows (or groups of rows).

    ``count`` aggregates the query's rows into the number reported, in ``unit``.
    """

    table: str
    column: str
    rule: str
    expected: str
    query: str
    reads: tuple[str, ...]
    count: str = "count(*)"
    unit: str = "rows"
    needs_extract: bool = False


# --- rules on one row -------------------------------------------------------------


def not_after_extract(table: str, column: str) -> RowRule:
    """``column`` is on or before the extract date (timestamps: before its end, UTC)."""
    if TABLES[table].column(column).type == "timestamp":
        return RowRule(
            table, column, "not_after_extract_date",
            f"{column} before the end of the extract date (midnight UTC after it)",
            f"{ident(column)} >= {EXTRACT_END}", needs_extract=True,
        )  # fmt: skip
    return RowRule(
        table, column, "not_after_extract_date", f"{column} ≤ the extract date",
        f"{ident(column)} > {EXTRACT_DATE}", needs_extract=True,
    )  # fmt: skip


def end_reason_iff_end(table: str, end: str) -> RowRule:
    return RowRule(
        table, "end_reason", "end_reason_iff_end",
        f"end_reason set when {end} is set, and empty when {end} is empty",
        f"({ident('end_reason')} IS NULL) <> ({ident(end)} IS NULL)",
    )  # fmt: skip


AMOUNTS: Final = ("total_cost", "social_security_paid", "mutuelle_paid", "out_of_pocket")


def _claims_rules() -> tuple[RowRule, ...]:
    sums = " + ".join(AMOUNTS[1:])
    return (
        RowRule("claims", "payment_date", "care_before_payment", "care_date ≤ payment_date",
                "payment_date < care_date"),
        not_after_extract("claims", "payment_date"),
        RowRule("claims", "total_cost", "amounts_add_up",
                f"total_cost = {' + '.join(AMOUNTS[1:])} within one cent",
                f"abs(total_cost - ({sums})) > 0.01 + 1e-9"),
        *(RowRule("claims", a, "not_negative", f"{a} ≥ 0 unless is_reversal is true",
                  f"NOT is_reversal AND {a} < 0") for a in AMOUNTS),
        *(RowRule("claims", a, "reversal_not_positive", f"{a} ≤ 0 on a reversal line",
                  f"is_reversal AND {a} > 0") for a in AMOUNTS),
    )  # fmt: skip


ROW_RULES: Final[tuple[RowRule, ...]] = (
    RowRule("members", "valid_to", "valid_from_before_valid_to",
            "valid_from < valid_to when valid_to is set", "valid_to <= valid_from"),
    RowRule("members", "membership_end", "membership_start_before_end",
            "membership_start ≤ membership_end", "membership_end < membership_start"),
    end_reason_iff_end("members", "membership_end"),
    not_after_extract("members", "valid_from"),
    not_after_extract("members", "membership_start"),
    not_after_extract("members", "online_account_since"),
    RowRule("beneficiaries", "end_date", "start_before_end", "start_date ≤ end_date",
            "end_date < start_date"),
    end_reason_iff_end("beneficiaries", "end_date"),
    *_claims_rules(),
    RowRule("holdings", "end_date", "start_before_end", "start_date ≤ end_date",
            "end_date < start_date"),
    not_after_extract("holdings", "start_date"),
    not_after_extract("holdings", "end_date"),
    not_after_extract("consent_events", "captured_at"),
    RowRule("consent_events", "expires_at", "expires_after_effective",
            "expires_at > effective_from when set", "expires_at <= effective_from"),
    RowRule("interactions", "exposure_probability", "probability_in_range",
            "a probability in (0, 1]",
            "NOT (exposure_probability > 0 AND exposure_probability <= 1)"),
    RowRule("interactions", "responded_at", "response_iff_responded_at",
            "responded_at empty exactly when response is 'none'",
            "(response = 'none') <> (responded_at IS NULL)"),
    RowRule("interactions", "responded_at", "responded_after_exposed",
            "responded_at ≥ exposed_at", "responded_at < exposed_at"),
    not_after_extract("interactions", "exposed_at"),
)  # fmt: skip


# --- keys and foreign keys, from features.tables ------------------------------------


def key_rule(table: Table) -> QueryRule:
    """No two rows share ``table.key``; reports every row of a duplicated key."""
    cols = ", ".join(ident(c) for c in table.key)
    present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in table.key)
    return QueryRule(
        table.name, ", ".join(table.key), "unique_key",
        f"one row per ({', '.join(table.key)})",
        f"SELECT {cols}, count(*) AS n_rows FROM {ident(table.name)} WHERE {present} "
        f"GROUP BY {cols} HAVING count(*) > 1",
        reads=(table.name,), count="sum(n_rows)",
    )  # fmt: skip


def foreign_key_rule(table: Table, column: str, target: str) -> QueryRule:
    """Every non-empty ``column`` value exists in ``target`` ("table.column")."""
    parent, parent_column = target.split(".")
    return QueryRule(
        table.name, column, "foreign_key", f"a {column} that exists in {target}",
        f"SELECT c.* FROM {ident(table.name)} AS c ANTI JOIN {ident(parent)} AS p "
        f"ON c.{ident(column)} = p.{ident(parent_column)} WHERE c.{ident(column)} IS NOT NULL",
        reads=(table.name, parent),
    )  # fmt: skip


# --- rules across tables -------------------------------------------------------------


def _care_acts() -> str:
    pairs = ", ".join(
        f"({literal(category)}, {literal(act)})" for category, acts in vocab.CARE_ACTS.items() for act in acts
    )
    return f"SELECT * FROM (VALUES {pairs}) AS t(care_category, act)"


DERIVED: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "care_acts": (_care_acts(), ()),
    "member_current": (
        "SELECT member_id, membership_start, membership_end FROM members "
        "QUALIFY row_number() OVER (PARTITION BY member_id ORDER BY valid_from DESC) = 1",
        ("members",),
    ),
}
"""Helper tables built once before the rules that read them: name -> (SQL, tables read)."""

_OVERLAP = """
SELECT member_id, valid_from, valid_to, previous_valid_from, previous_valid_to FROM (
    SELECT member_id, valid_from, valid_to,
           lag(valid_from) OVER w AS previous_valid_from,
           lag(valid_to) OVER w AS previous_valid_to
    FROM members WINDOW w AS (PARTITION BY member_id ORDER BY valid_from)
) WHERE previous_valid_from < valid_from
    AND (previous_valid_to IS NULL OR previous_valid_to > valid_from)"""

_BENEFICIARY_MEMBERSHIP = (
    "SELECT b.*, m.membership_start, m.membership_end FROM beneficiaries AS b "
    "JOIN member_current AS m ON m.member_id = b.member_id WHERE "
)

_ONE_SUBSCRIBER = """
SELECT m.member_id, count(b.beneficiary_id) AS subscriber_rows
FROM member_current AS m
LEFT JOIN beneficiaries AS b ON b.member_id = m.member_id AND b.role = 'subscriber'
GROUP BY m.member_id HAVING count(b.beneficiary_id) <> 1"""

# unknown categories and acts are reported by allowed_values, not here
_ACT_OF_OTHER_CATEGORY = f"""
SELECT c.* FROM claims AS c
ANTI JOIN care_acts AS a ON a.care_category = c.care_category AND a.act = c.act
WHERE NOT ({not_in_sql("c.care_category", vocab.CARE_CATEGORIES)})
  AND NOT ({not_in_sql("c.act", vocab.ALL_ACTS)})"""

_CLAIM_BENEFICIARY = (
    "SELECT c.*, b.member_id AS beneficiary_member_id, b.start_date AS coverage_start, "
    "b.end_date AS coverage_end FROM claims AS c "
    "JOIN beneficiaries AS b ON b.beneficiary_id = c.beneficiary_id WHERE "
)

CROSS_RULES: Final[tuple[QueryRule, ...]] = (
    QueryRule("members", "valid_from", "no_overlapping_versions",
              "versions of one member that do not overlap: each starts on or after the "
              "previous one's valid_to", _OVERLAP, reads=("members",)),
    QueryRule("beneficiaries", "start_date", "starts_within_membership",
              "start_date ≥ the member's membership_start",
              _BENEFICIARY_MEMBERSHIP + "b.start_date < m.membership_start",
              reads=("beneficiaries", "members")),
    QueryRule("beneficiaries", "end_date", "ends_within_membership",
              "end_date ≤ the member's membership_end when the membership ended",
              _BENEFICIARY_MEMBERSHIP + "b.end_date > m.membership_end",
              reads=("beneficiaries", "members")),
    QueryRule("beneficiaries", "end_date", "closed_when_membership_ended",
              "an end_date when the member's membership has ended",
              _BENEFICIARY_MEMBERSHIP + "m.membership_end IS NOT NULL AND b.end_date IS NULL",
              reads=("beneficiaries", "members")),
    QueryRule("beneficiaries", "role", "one_subscriber",
              "exactly one beneficiary with role 'subscriber' per member", _ONE_SUBSCRIBER,
              reads=("beneficiaries", "members"), unit="members"),
    QueryRule("claims", "act", "act_in_category",
              "an act listed for the line's care_category in nba.vocab.CARE_ACTS",
              _ACT_OF_OTHER_CATEGORY, reads=("claims",)),
    QueryRule("claims", "beneficiary_id", "beneficiary_of_member",
              "a beneficiary covered by the claim's member",
              _CLAIM_BENEFICIARY + "b.member_id <> c.member_id "
              "AND c.member_id IN (SELECT member_id FROM member_current)",
              reads=("claims", "beneficiaries", "members")),
    QueryRule("claims", "care_date", "care_within_coverage",
              "care_date between the beneficiary's start_date and end_date, both included",
              _CLAIM_BENEFICIARY + "c.care_date < b.start_date OR c.care_date > b.end_date",
              reads=("claims", "beneficiaries")),
)  # fmt: skip


def query_rules() -> tuple[QueryRule, ...]:
    """Keys and foreign keys of every table (from ``features.tables``), then cross rules."""
    keys = tuple(key_rule(t) for t in TABLES.values())
    foreign = tuple(
        foreign_key_rule(t, column, target)
        for t in TABLES.values()
        for column, target in t.foreign_keys.items()
    )
    return keys + foreign + CROSS_RULES
