"""One decision as compliance reads it (COMPLIANCE.md, Explanations: ACPR levels 2-4).

From the decision's audit record: what the member read, every feature's contribution to each
returned action (exact TreeSHAP, recomputed from the recorded features and model versions),
the consent verdicts and the events behind them (checked against the consent registry), why
each other action was not returned, and a replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from features import registry
from reports import html
from reports.proofs import consent_events_of_query
from reports.sources import NotFoundError, Sources
from reports.sql import Sql, run
from serving.audit import AuditLog
from serving.explain import AUTOMATED_NOTICE

REASONS = {
    "NO_CONSENT": "no consent in force for the purpose (none given, expired, or denied)",
    "WITHDRAWN": "the member withdrew their consent",
    "OBJECTED": "the member objected",
    "NO_OTHER_OFFERS": "the member asked for no other offers",
    "CHANNEL_NOT_PERMITTED": "the channel is not permitted (no opt-in, or refused)",
    "HEALTH_DATA_NOT_CONSENTED": "the offer uses health data and offers_health_data consent is not in force",
    "NOT_ELIGIBLE": "the catalogue's eligibility or timing rule is not met",
    "ALREADY_HOLDS": "the member already holds the product",
    "CONTACT_POLICY": "contact policy: dismissed lately, or enough offers shown in the last 30 days",
    "MINOR": "commercial offers are for adults only",
    "VULNERABLE": "the member is flagged vulnerable: no commercial offer",
    "CONSENT_UNAVAILABLE": "the consent registry could not be read: refused, fail closed",
    "LOWER_PRIORITY": "passed every gate but ranked below the items returned",
    "NO_MODEL": "no servable model for the action",
}
"""Reason codes in words, for compliance (members never see them)."""


@dataclass
class Item:
    """A returned action: what the member read, and its contribution chart."""

    action_id: str
    rank: int
    title: str
    text: str
    factors: list[dict[str, Any]]
    chart: Markup
    zero: list[str]


def label(feature: str, language: str = "en") -> str:
    known = registry.BY_NAME.get(feature)
    if known is None:
        return feature
    return known.label_fr if language == "fr" else known.label_en


def shown_value(feature: str, value: object) -> str:
    known = registry.BY_NAME.get(feature)
    return known.format(value, "en") if known is not None else str(value)


def contributions_chart(action_id: str, contributions: dict[str, float], values: dict[str, Any]) -> Markup:
    """Every non-zero contribution as a horizontal bar, strongest at the top."""
    items = sorted(((v, f) for f, v in contributions.items() if v != 0), key=lambda p: abs(p[0]))
    names = [f"{label(f)} = {shown_value(f, values.get(f))}" for _, f in items]
    bars = go.Bar(
        x=[v for v, _ in items],
        y=names,
        orientation="h",
        marker_color=[html.COLORS[2] if v > 0 else html.COLORS[1] for v, _ in items],
        customdata=[f for _, f in items],
        hovertemplate="%{customdata}: %{x:+.4f}<extra></extra>",
    )
    fig = go.Figure(bars)
    fig.update_layout(
        title=f"{action_id}: contribution of each feature (calibrated log-odds, exact TreeSHAP)",
        xaxis_title="contribution",
        yaxis={"automargin": True},
        showlegend=False,
    )
    return html.figure(fig, height=max(260, 22 * len(items) + 120))


def items(record: dict[str, Any], sources: Sources) -> tuple[list[Item], str | None]:
    """The returned actions, and why their contributions could not be recomputed (or None)."""
    from serving.replay import contributions as recompute

    language = record.get("language", "fr")
    values = record.get("features") or {}
    ranks = {c["action_id"]: c.get("rank") for c in record.get("candidates", [])}
    try:
        derived, problem = recompute(record, sources.model_set()), None
    except Exception as exc:  # shown on the page: the record is still read
        derived, problem = {}, f"{type(exc).__name__}: {exc}".splitlines()[0]
    out = []
    for action_id in record.get("returned", []):
        explanation = (record.get("explanations") or {}).get(action_id, {})
        contributions = derived.get(action_id, {})
        action = sources.catalogue[action_id] if action_id in sources.catalogue.ids else None
        title = action.title.get(language, action_id) if action is not None else action_id
        out.append(
            Item(
                action_id=action_id,
                rank=int(ranks.get(action_id) or 0),
                title=title,
                text=explanation.get("text", ""),
                factors=explanation.get("factors", []),
                chart=contributions_chart(action_id, contributions, values),
                zero=sorted(f for f, v in contributions.items() if v == 0),
            )
        )
    return out, problem


def registry_events(sources: Sources, request_id: str) -> dict[int, Any]:
    """The consent events the record cites, as the registry holds them, by event id."""
    rows = run(sources.engine, consent_events_of_query(Sql.of(sources.engine)), request_id=request_id)
    return {int(r.event_id): r for r in rows}


def candidates(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every candidate with its reason in words, returned ones first by rank."""
    out = []
    for c in record.get("candidates", []):
        model = c.get("model") or {}
        out.append(c | {"why": REASONS.get(c.get("reason") or "", c.get("reason") or ""),
                        "model_version": model.get("version")})  # fmt: skip
    return sorted(out, key=lambda c: (c["rank"] is None, c["rank"] or 0, c["action_id"]))


def replay_verdict(record: dict[str, Any], sources: Sources) -> dict[str, Any]:
    from serving.replay import replay

    try:
        report = replay(record, sources.model_set(), sources.catalogue)
    except Exception as exc:  # shown on the page as "could not replay"
        return {"identical": None, "problem": f"{type(exc).__name__}: {exc}".splitlines()[0], "scores": []}
    return report.as_dict() | {"problem": None}


def decision_context(sources: Sources, request_id: str, with_replay: bool = True) -> dict[str, Any]:
    """Everything the decision page shows; raises NotFoundError for an unknown request id."""
    log = AuditLog(sources.engine)
    record = log.get(request_id)
    if record is None:
        raise NotFoundError(f"request_id {request_id!r} has no decision record in {sources.database_label}")
    events = registry_events(sources, request_id)
    returned, problem = items(record, sources)
    return {
        "record": record,
        "items": returned,
        "contributions_problem": problem,
        "notice": AUTOMATED_NOTICE.get(record.get("language", "fr"), ""),
        "verdicts": record.get("consent", {}),
        "events": [
            e | {"in_registry": int(e["event_id"]) in events} for e in record.get("consent_events", [])
        ],
        "events_query": consent_events_of_query(Sql.of(sources.engine)),
        "candidates": candidates(record),
        "replay": replay_verdict(record, sources) if with_replay else None,
        "reads": log.reads(request_id),
        "database": sources.database_label,
    }


def decision_page(sources: Sources, request_id: str, with_replay: bool = True) -> str:
    """The decision page of ``request_id`` as one self-contained HTML document."""
    context = decision_context(sources, request_id, with_replay)
    return html.render("decision.html", title=f"Decision {request_id}", **context)
