"""The compliance report: proofs with their queries and counts, fairness, the champions' model cards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from reports import html
from reports.cards import ModelCard, champion_cards
from reports.fairness import ATTRIBUTES, THRESHOLD, AttributeTable, Fairness, fairness
from reports.proofs import REPLAY_SAMPLE, Proof, all_proofs
from reports.sources import Sources
from serving.audit import AuditLog


@dataclass
class ComplianceReport:
    """What the page shows, for callers that want the numbers too (the CLI prints a summary)."""

    decisions: int
    proofs: list[Proof]
    fairness: Fairness
    cards: list[ModelCard]
    chain: Any  # serving.audit.VerifyReport
    html: str

    @property
    def failed(self) -> list[Proof]:
        return [p for p in self.proofs if not p.ok]


def heatmap(table: AttributeTable) -> Markup:
    """Selection rate per action (rows) and group (columns) of one attribute."""
    rates = table.rates
    fig = go.Figure(
        go.Heatmap(
            z=rates.to_numpy(),
            x=[f"{g} (n={table.members[g]})" for g in table.groups],
            y=list(rates.index),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=[[html.percent(v) for v in row] for row in rates.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}: %{text}<extra></extra>",
            colorbar={"title": "selection rate"},
        )
    )
    fig.update_layout(
        title=f"Selection rate by {ATTRIBUTES[table.attribute]}", yaxis={"autorange": "reversed"}
    )
    return html.figure(fig, height=max(360, 28 * len(rates) + 140))


def compliance_report(sources: Sources, replay_sample: int = REPLAY_SAMPLE) -> ComplianceReport:
    """Run every proof, the fairness tables and read the model cards; raises ReportError on an empty log."""
    decisions = sources.require_decisions()
    proofs = all_proofs(sources, replay_sample)
    chain = AuditLog(sources.engine).verify()
    fair = fairness(sources)
    cards = champion_cards(sources)
    page = html.render(
        "compliance.html",
        title="Compliance report",
        database=sources.database_label,
        tracking_uri=sources.tracking_uri,
        decisions=decisions,
        proofs=proofs,
        chain=chain,
        fairness=fair,
        heatmaps=[heatmap(t) for t in fair.tables],
        threshold=THRESHOLD,
        attributes=ATTRIBUTES,
        cards=cards,
        markdown=html.markdown,
    )
    return ComplianceReport(decisions, proofs, fair, cards, chain, page)
