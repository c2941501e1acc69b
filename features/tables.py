"""The six source tables of the data contract, declared once.

Each column names its logical type, nullability, allowed values and meaning.
The generator writes with :func:`arrow_schema`, the validator builds its pandera
schemas from the same declarations, and ``docs/data-contract.md`` describes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa

from nba import vocab

# logical type -> Arrow type used on disk
ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = False
    allowed: tuple[object, ...] | None = None
    min_value: float | None = None


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    foreign_keys: dict[str, str] = field(default_factory=dict)
    """column -> "table.column" it must resolve to."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema files of ``table`` are written with."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in table.columns])


MEMBERS = Table(
    name="members",
    description=(
        "One row per version of a member's contract record (slowly changing, type 2): "
        "a new row starts whenever an attribute changes (a move, a status or marital "
        "change, a formula change). A member is the subscriber (adhérent) of a "
        "household contract."
    ),
    key=("member_id", "valid_from"),
    columns=(
        Column("member_id", "int", "Member (contract subscriber) identifier.", min_value=1),
        Column("valid_from", "date", "First day this version is in force."),
        Column(
            "valid_to", "date", "Day after the last day in force; empty for the current version.",
            nullable=True,
        ),
        Column("birth_date", "date", "The subscriber's date of birth."),
        Column("sex", "str", "Sex as recorded (used only for screening eligibility).",
               allowed=vocab.SEXES),
        Column("region", "str", "Region of residence.", allowed=vocab.REGION_NAMES),
        Column("postcode", "str", "Postcode of residence (5 characters)."),
        Column("status", "str", "Occupational status.", allowed=vocab.STATUSES),
        Column("marital_status", "str", "Marital status.", allowed=vocab.MARITAL_STATUSES),
        Column("contract_type", "str", "Individual or collective (employer) health contract.",
               allowed=vocab.CONTRACT_TYPES),
        Column("formula_level", "int", "Health formula level, 1 (basic) to 4 (top).",
               allowed=vocab.FORMULA_LEVELS),
        Column("vulnerable", "bool", "Flagged vulnerable: never solicited with offers."),
        Column("online_account_since", "date", "Day the online account was opened; empty if none.",
               nullable=True),
        Column("membership_start", "date", "Day the membership started."),
        Column("membership_end", "date", "Day the membership ended; empty while active.",
               nullable=True),
        Column("end_reason", "str", "Why the membership ended; empty while active.",
               nullable=True, allowed=vocab.MEMBER_END_REASONS),
    ),
)  # fmt: skip

BENEFICIARIES = Table(
    name="beneficiaries",
    description=(
        "One row per person covered by a member's contract: the subscriber, a spouse or a "
        "child, with the period during which they are covered."
    ),
    key=("beneficiary_id",),
    foreign_keys={"member_id": "members.member_id"},
    columns=(
        Column("beneficiary_id", "int", "Covered person identifier.", min_value=1),
        Column("member_id", "int", "The member whose contract covers this person."),
        Column("role", "str", "Subscriber, spouse or child.", allowed=vocab.BENEFICIARY_ROLES),
        Column("birth_date", "date", "Date of birth."),
        Column("sex", "str", "Sex as recorded.", allowed=vocab.SEXES),
        Column("start_date", "date", "First day covered."),
        Column("end_date", "date", "Day coverage ended; empty while covered.", nullable=True),
        Column("end_reason", "str", "Why coverage ended; empty while covered.", nullable=True,
               allowed=vocab.BENEFICIARY_END_REASONS),
    ),
)  # fmt: skip

CLAIMS = Table(
    name="claims",
    description=(
        "One row per reimbursed care line: who received what care, when, what it cost and "
        "who paid. A reversal cancels an earlier line with negative amounts."
    ),
    key=("claim_id",),
    foreign_keys={
        "member_id": "members.member_id",
        "beneficiary_id": "beneficiaries.beneficiary_id",
    },
    columns=(
        Column("claim_id", "int", "Claim line identifier.", min_value=1),
        Column("member_id", "int", "Member whose contract paid."),
        Column("beneficiary_id", "int", "Person who received the care."),
        Column("care_date", "date", "Day the care was given."),
        Column("payment_date", "date", "Day the mutuelle paid."),
        Column("care_category", "str", "Closed list of care categories.",
               allowed=vocab.CARE_CATEGORIES),
        Column("act", "str", "The act within the category (closed list per category).",
               allowed=vocab.ALL_ACTS),
        Column("total_cost", "float", "Total cost in euros."),
        Column("social_security_paid", "float", "Paid by the social security, euros."),
        Column("mutuelle_paid", "float", "Paid by the mutuelle, euros."),
        Column("out_of_pocket", "float", "Left for the member to pay (reste à charge), euros."),
        Column("is_reversal", "bool", "True when this line cancels an earlier one."),
    ),
)  # fmt: skip

HOLDINGS = Table(
    name="holdings",
    description="One row per product (other than complementary health) a member held.",
    key=("holding_id",),
    foreign_keys={"member_id": "members.member_id"},
    columns=(
        Column("holding_id", "int", "Holding identifier.", min_value=1),
        Column("member_id", "int", "Member holding the product."),
        Column("product", "str", "Product.", allowed=vocab.PRODUCTS),
        Column("start_date", "date", "First day held."),
        Column("end_date", "date", "Day it ended; empty while held.", nullable=True),
    ),
)  # fmt: skip

CONSENT_EVENTS = Table(
    name="consent_events",
    description=(
        "Append-only consent history (COMPLIANCE.md): one row per event. The current state "
        "is the latest effective event per (member, purpose, channel)."
    ),
    key=("event_id",),
    foreign_keys={"member_id": "members.member_id"},
    columns=(
        Column("event_id", "int", "Event identifier.", min_value=1),
        Column("member_id", "int", "Member the event is about."),
        Column("purpose", "str", "Purpose.", allowed=vocab.PURPOSES),
        Column("channel", "str", "Channel, or 'all'.", allowed=vocab.CHANNELS),
        Column("decision", "str", "Decision.", allowed=vocab.CONSENT_DECISIONS),
        Column("notice_version", "str", "Privacy notice shown.", allowed=vocab.NOTICE_VERSIONS),
        Column("source", "str", "Where it was captured.", allowed=vocab.CONSENT_SOURCES),
        Column("actor", "str", "Who recorded it (the member or an advisor id)."),
        Column("captured_at", "timestamp", "When the server recorded it (UTC)."),
        Column("effective_from", "timestamp", "When it takes effect (UTC)."),
        Column("expires_at", "timestamp", "When a grant lapses; empty if never.", nullable=True),
    ),
)  # fmt: skip

INTERACTIONS = Table(
    name="interactions",
    description=(
        "One row per past exposure of a member to an action, with the probability with which "
        "the exposure was chosen and the member's response."
    ),
    key=("interaction_id",),
    foreign_keys={"member_id": "members.member_id"},
    columns=(
        Column("interaction_id", "int", "Interaction identifier.", min_value=1),
        Column("member_id", "int", "Member exposed."),
        Column("action_id", "str", "Action shown.", allowed=vocab.ACTION_IDS),
        Column("campaign_id", "str", "Campaign that chose the exposure."),
        Column("channel", "str", "Channel of the exposure.", allowed=vocab.INTERACTION_CHANNELS),
        Column("exposed_at", "timestamp", "When the member was exposed (UTC)."),
        Column("exposure_probability", "float",
               "Probability with which the logging policy chose this exposure (0, 1]."),
        Column("response", "str", "Member's last response.", allowed=vocab.RESPONSES),
        Column("responded_at", "timestamp", "When the member responded; empty if 'none'.",
               nullable=True),
    ),
)  # fmt: skip

TABLES: Final[dict[str, Table]] = {
    t.name: t for t in (MEMBERS, BENEFICIARIES, CLAIMS, HOLDINGS, CONSENT_EVENTS, INTERACTIONS)
}

# ground truth: evaluation only, never read by features, training or serving
GT_PROPENSITIES_COLUMNS: Final = ("member_id", "month", *vocab.ACTION_IDS)
GT_EVENTS = Table(
    name="life_events",
    description="Ground truth: every life event the generator simulated, with its date.",
    key=("member_id", "event", "event_date", "beneficiary_id"),
    columns=(
        Column("member_id", "int", "Member."),
        Column("beneficiary_id", "int", "Person concerned (the subscriber's id if the member)."),
        Column("event", "str", "Life event.", allowed=vocab.LIFE_EVENTS),
        Column("event_date", "date", "Day it happened."),
    ),
)
