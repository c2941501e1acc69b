"""Selection rates by sex, age band and region (COMPLIANCE.md, Fairness), with fairlearn's MetricFrame.

A member is *selected* for an action when at least one of their answered decisions (status 200)
returned it. Members are those with at least one answered decision; their sex, age and region
come from the online profile store (sex and region are never model features, so the audit
record does not hold them). Per action and attribute, the ratio is the lowest group's selection
rate over the highest's; below 0.8 it is flagged for review. Members the current profile load
does not hold are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate

from nba.catalogue import Catalogue
from reports.sources import Sources
from reports.sql import Sql, run

THRESHOLD = 0.8
AGE_BANDS = ((0, 18, "<18"), (18, 30, "18-29"), (30, 45, "30-44"), (45, 60, "45-59"), (60, 75, "60-74"),
             (75, 200, "75+"))  # fmt: skip
ATTRIBUTES = {"sex": "sex", "age_band": "age band", "region": "region"}
RULE_FEATURES = {
    "sex": ("sex_female",),
    "age_band": ("age", "years_to_retirement_age"),
    "region": ("region",),
}
"""Profile features behind each attribute: an action whose catalogue rule reads one differs by design."""


def returned_query(sql: Sql) -> str:
    """Every (member, action) an answered decision returned."""
    return f"""SELECT DISTINCT a.member_id, {sql.text("r")} AS action_id
FROM audit_log a
{sql.each("a.record", "returned", "r")}
WHERE {sql.rec("status")} = {sql.number(200)} AND a.member_id IS NOT NULL"""


def members_query(sql: Sql) -> str:
    return f"""SELECT DISTINCT a.member_id
FROM audit_log a
WHERE {sql.rec("status")} = {sql.number(200)} AND a.member_id IS NOT NULL"""


def age_band(age: object) -> str | None:
    if age is None or (isinstance(age, float) and np.isnan(age)):
        return None
    for low, high, label in AGE_BANDS:
        if low <= float(age) < high:  # type: ignore[arg-type]
            return label
    return None


def selections(sources: Sources) -> tuple[pd.DataFrame, int]:
    """One row per decided member: sex, age_band, region and a 0/1 column per action; and how many
    decided members the profile store does not hold."""
    sql = Sql.of(sources.engine)
    members = [int(r.member_id) for r in run(sources.engine, members_query(sql))]
    returned = run(sources.engine, returned_query(sql))
    if sources.profiles is None:
        raise ValueError("the fairness table needs the online profile store (sex, age, region)")
    profiles = sources.profiles.get_many(members)
    rows = []
    for member_id in members:
        profile = profiles.get(member_id)
        if profile is None:
            continue
        values = profile.values
        female = values.get("sex_female")
        rows.append({
            "member_id": member_id,
            "sex": None if female is None else ("F" if female else "M"),
            "age_band": age_band(values.get("age")),
            "region": values.get("region"),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=["member_id", *ATTRIBUTES])
    for action in sources.catalogue.actions:
        chosen = {int(r.member_id) for r in returned if r.action_id == action.id}
        frame[action.id] = frame["member_id"].isin(chosen).astype(int)
    return frame, len(members) - len(frame)


@dataclass
class AttributeTable:
    """Selection rates of every action by the groups of one attribute."""

    attribute: str
    groups: list[str]
    members: dict[str, int]
    rates: pd.DataFrame  # index: action ids, columns: groups
    ratios: dict[str, float]
    flagged: list[str] = field(default_factory=list)
    by_design: dict[str, str] = field(default_factory=dict)
    """Actions whose catalogue rule reads the attribute (action id -> the feature it reads)."""


def rule_features(rule: object) -> set[str]:
    """Every string of a catalogue rule (feature names, and a few operators that never clash)."""
    if isinstance(rule, str):
        return {rule}
    if isinstance(rule, list | tuple):
        return set().union(*(rule_features(part) for part in rule)) if rule else set()
    return set()


def by_design(catalogue: Catalogue, attribute: str) -> dict[str, str]:
    """Actions whose eligibility or relevance rule reads a feature behind ``attribute``."""
    out = {}
    for action in catalogue.actions:
        read = rule_features(action.eligible) | rule_features(action.relevant)
        hits = [f for f in RULE_FEATURES[attribute] if f in read]
        if hits:
            out[action.id] = hits[0]
    return out


def attribute_table(frame: pd.DataFrame, attribute: str, actions: list[str]) -> AttributeTable:
    """fairlearn's MetricFrame per action over ``attribute`` (rows without it are left out)."""
    known = frame[frame[attribute].notna()]
    groups = sorted(known[attribute].astype(str).unique())
    rates, ratios = {}, {}
    for action in actions:
        y = known[action].to_numpy()
        metric = MetricFrame(
            metrics=selection_rate, y_true=y, y_pred=y, sensitive_features=known[attribute].astype(str)
        )
        by_group = metric.by_group
        rates[action] = {g: float(by_group[g]) for g in groups}
        ratios[action] = float(metric.ratio(method="between_groups")) if by_group.max() > 0 else float("nan")
    table = pd.DataFrame.from_dict(rates, orient="index", columns=groups)
    counts = known[attribute].astype(str).value_counts()
    flagged = [a for a, r in ratios.items() if r == r and r < THRESHOLD]
    return AttributeTable(attribute, groups, {g: int(counts[g]) for g in groups}, table, ratios, flagged)


@dataclass
class Fairness:
    members: int
    unknown: int
    tables: list[AttributeTable]

    @property
    def flagged(self) -> int:
        return sum(len(t.flagged) for t in self.tables)


def fairness(sources: Sources) -> Fairness:
    frame, unknown = selections(sources)
    actions = [a.id for a in sources.catalogue.actions]
    tables = [attribute_table(frame, attribute, actions) for attribute in ATTRIBUTES] if len(frame) else []
    for table in tables:
        table.by_design = by_design(sources.catalogue, table.attribute)
    return Fairness(len(frame), unknown, tables)
