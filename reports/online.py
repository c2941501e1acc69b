"""Online: how each serving variant did with members, from the audit log and the feedback events.

Two views, both from answered decisions (status 200):

- **per exposure** (descriptive): an exposure is one action a decision returned; it is shown,
  clicked or accepted when at least one such feedback event names that request and action.
  Rates have 95% Wilson intervals.
- **uplift** (the comparison): members are assigned to variants (a salted hash of their id), so
  variants are compared per *member*: the share of a variant's members who clicked or accepted
  the action (or, overall, anything) at least once. A control group, shown no offers, then counts
  as 0 for offers instead of having no rate. The uplift of a variant is its share minus the
  reference's (``control`` when it exists, else ``champion``), with a 95% normal-approximation
  interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from reports.sources import Sources
from reports.sql import Sql, run

Z = 1.959963984540054  # two-sided 95%
EVENTS = ("shown", "clicked", "accepted")
COMPARED = ("clicked", "accepted")
MIN_MEMBERS = 30
MIN_OUTCOMES = 5
"""Too early to say, whatever the interval, with fewer than MIN_MEMBERS members in either variant or
fewer than MIN_OUTCOMES members with (or without) the outcome: the normal approximation needs both."""
PREFERRED_REFERENCES = ("control", "champion")
ALL = "all"


def exposures_query(sql: Sql) -> str:
    return f"""SELECT a.request_id, a.member_id, {sql.rec("variant")} AS variant, {sql.text("r")} AS action_id
FROM audit_log a
{sql.each("a.record", "returned", "r")}
WHERE {sql.rec("status")} = {sql.number(200)}"""


def members_query(sql: Sql) -> str:
    return f"""SELECT DISTINCT a.member_id, {sql.rec("variant")} AS variant
FROM audit_log a
WHERE {sql.rec("status")} = {sql.number(200)} AND a.member_id IS NOT NULL"""


FEEDBACK_QUERY = """SELECT DISTINCT request_id, action_id, event
FROM feedback_events"""


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (nan, nan when n is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float, float]:
    """p1 - p0 and its 95% normal-approximation interval (nan when either n is 0)."""
    if n1 == 0 or n0 == 0:
        return (math.nan, math.nan, math.nan)
    p1, p0 = x1 / n1, x0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    d = p1 - p0
    return (d, d - Z * se, d + Z * se)


def exposures(sources: Sources) -> pd.DataFrame:
    """One row per exposure: request_id, member_id, variant, action_id, a 0/1 column per event."""
    sql = Sql.of(sources.engine)
    rows = run(sources.engine, exposures_query(sql))
    frame = pd.DataFrame(
        [tuple(r) for r in rows], columns=["request_id", "member_id", "variant", "action_id"]
    )
    feedback = pd.DataFrame(
        [tuple(r) for r in run(sources.engine, FEEDBACK_QUERY)], columns=["request_id", "action_id", "event"]
    )
    for event in EVENTS:
        keys = feedback.loc[feedback["event"] == event, ["request_id", "action_id"]]
        marked = set(zip(keys["request_id"], keys["action_id"], strict=True))
        pairs = zip(frame["request_id"], frame["action_id"], strict=True)
        frame[event] = [int(pair in marked) for pair in pairs]
    return frame


def assigned(sources: Sources) -> pd.DataFrame:
    """Every (member, variant) with at least one answered decision."""
    rows = run(sources.engine, members_query(Sql.of(sources.engine)))
    return pd.DataFrame([tuple(r) for r in rows], columns=["member_id", "variant"])


def reference_of(variants: list[str]) -> tuple[str | None, str]:
    """The variant others are compared with, and a note when it is not ``control``."""
    if "control" in variants:
        return "control", ""
    if "champion" in variants:
        return "champion", "No control variant recorded yet: uplift is against the champion"
    return None, "Neither a control nor a champion variant recorded: no uplift"


def _scopes(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(ALL, frame), *sorted(frame.groupby("action_id"), key=lambda kv: str(kv[0]))]  # type: ignore[list-item]


def per_exposure(frame: pd.DataFrame) -> pd.DataFrame:
    """Per action (``all`` first) and variant: exposures, event counts, rates and Wilson intervals."""
    out = []
    for scope, part in _scopes(frame):
        for variant, rows in sorted(part.groupby("variant"), key=lambda kv: str(kv[0])):
            row: dict[str, object] = {"action_id": scope, "variant": variant, "exposures": len(rows)}
            for event in EVENTS:
                x, n = int(rows[event].sum()), len(rows)
                low, high = wilson(x, n)
                row |= {event: x, f"{event}_rate": x / n, f"{event}_low": low, f"{event}_high": high}
            out.append(row)
    return pd.DataFrame(out)


def per_member(frame: pd.DataFrame, members: pd.DataFrame, reference: str | None) -> pd.DataFrame:
    """Per action (``all`` first) and variant: members, those who clicked / accepted at least once,
    shares with Wilson intervals, and the uplift against ``reference`` with its interval."""
    sizes = members.groupby("variant")["member_id"].nunique()
    variants = sorted(str(v) for v in sizes.index)
    actions = [ALL, *sorted(frame["action_id"].unique())]
    out = []
    for action in actions:
        part = frame if action == ALL else frame[frame["action_id"] == action]
        counts = {e: part[part[e] == 1].groupby("variant")["member_id"].nunique() for e in COMPARED}
        for variant in variants:
            n = int(sizes[variant])
            row: dict[str, object] = {"action_id": action, "variant": variant, "members": n}
            for event in COMPARED:
                x = int(counts[event].get(variant, 0))
                x0, n0 = int(counts[event].get(reference, 0)), int(sizes.get(reference, 0))
                low, high = wilson(x, n)
                d = difference(x, n, x0, n0) if reference and variant != reference else (math.nan,) * 3
                row |= {event: x, f"{event}_share": x / n if n else math.nan, f"{event}_low": low,
                        f"{event}_high": high, f"{event}_uplift": d[0], f"{event}_uplift_low": d[1],
                        f"{event}_uplift_high": d[2]}  # fmt: skip
            out.append(row)
    return pd.DataFrame(out)


def points(value: float) -> str:
    return f"{100 * value:+.1f}"


def compare(table: pd.DataFrame, variant: str, reference: str, event: str = "accepted") -> str:
    """How ``variant`` did against ``reference`` on ``event`` overall, in one sentence."""
    overall = {str(r["variant"]): r for r in table[table["action_id"] == ALL].to_dict("records")}
    row, base = overall[variant], overall[reference]
    d, low, high = (float(row[f"{event}_uplift{end}"]) for end in ("", "_low", "_high"))
    interval = f"95% CI {points(low)} to {points(high)}"
    name = "acceptance" if event == "accepted" else "clicks"
    n1, n0 = int(row["members"]), int(base["members"])
    x1, x0 = int(row[event]), int(base[event])
    sizes = f"{n1:,} and {n0:,} members"
    few = min(n1, n0) < MIN_MEMBERS or min(x1, x0, n1 - x1, n0 - x0) < MIN_OUTCOMES
    if few or math.isnan(d):
        return (
            f"Too early to say: the {variant} differs from the {reference} on {name} by {points(d)} points "
            f"({interval}), on only {sizes}."
        )
    if low > 0 or high < 0:
        word = "beats" if d > 0 else "does worse than"
        return (
            f"The {variant} {word} the {reference} on {name} by {points(d)} points ({interval}, {sizes}): "
            "confident at the 95% level."
        )
    return (
        f"No clear winner yet: the {variant} differs from the {reference} on {name} by {points(d)} points, "
        f"but the {interval} includes 0 ({sizes}); keep the test running."
    )


def verdict(table: pd.DataFrame, reference: str | None, event: str = "accepted") -> str:
    """One plain sentence: which variant wins against the reference on ``event``, and how sure we are."""
    if table.empty:
        return "Too early to say: no decision has been answered yet."
    if reference is None:
        return "No comparison: no control or champion variant to compare with."
    overall = table[table["action_id"] == ALL]
    others = overall[overall["variant"] != reference]
    if others.empty:
        n = int(overall["members"].sum())
        return f"Too early to say: only the {reference} variant has been served ({n:,} members)."
    best = others.sort_values(f"{event}_uplift", ascending=False, na_position="last").iloc[0]
    return compare(table, str(best["variant"]), reference, event)


@dataclass
class Online:
    exposure_table: pd.DataFrame
    member_table: pd.DataFrame
    reference: str | None
    note: str
    sentence: str
    models_sentence: str | None
    """Challenger against champion, when the reference is the control group."""
    exposures: int
    decisions: int


def online(sources: Sources) -> Online:
    frame = exposures(sources)
    members = assigned(sources)
    variants = sorted(str(v) for v in members["variant"].dropna().unique())
    reference, note = reference_of(variants)
    table = per_member(frame, members, reference)
    models = None
    if reference == "control" and {"champion", "challenger"} <= set(variants):
        models = compare(per_member(frame, members, "champion"), "challenger", "champion")
    return Online(
        exposure_table=per_exposure(frame),
        member_table=table,
        reference=reference,
        note=note,
        sentence=verdict(table, reference),
        models_sentence=models,
        exposures=len(frame),
        decisions=sources.decisions(),
    )


def per_action_rows(result: Online) -> list[dict[str, object]]:
    """Each action's member shares and uplift beside its per-exposure acceptance, for one table."""
    exposure = result.exposure_table.set_index(["action_id", "variant"]) if result.exposures else None
    rows = []
    for _, r in result.member_table[result.member_table["action_id"] != ALL].iterrows():
        row = {str(k): v for k, v in r.to_dict().items()}
        key = (r["action_id"], r["variant"])
        found = exposure is not None and key in exposure.index
        row["exposures"] = int(exposure.loc[key, "exposures"]) if found else 0  # type: ignore[union-attr]
        for name in ("accepted_rate", "accepted_low", "accepted_high"):
            row[f"exposure_{name}"] = float(exposure.loc[key, name]) if found else math.nan  # type: ignore[union-attr]
        rows.append(row)
    return rows
