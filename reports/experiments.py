"""The experiment report: offline runs side by side (MLflow), online variants with uplift (database)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.subplots import make_subplots

from reports import html
from reports.offline import METRICS, TrainRun, load_runs
from reports.online import EVENTS, Online, online, per_action_rows
from reports.sources import ReportError, Sources

GRID_COLUMNS = 4
SHAP_TOP = 8


@dataclass
class ExperimentReport:
    runs: list[TrainRun]
    online: Online | None
    html: str


# -- offline ---------------------------------------------------------------------------------------


def action_ids(runs: list[TrainRun], sources: Sources) -> list[str]:
    """Catalogue actions first (in catalogue order), then any other action a run holds."""
    seen = {a for r in runs for a in r.actions}
    ordered = [a for a in sources.catalogue.ids if a in seen]
    return ordered + sorted(seen - set(ordered))


def metric_tables(runs: list[TrainRun], actions: list[str]) -> list[dict[str, Any]]:
    """Per metric: each action's value in every run, and each run's difference from the first."""
    tables = []
    for metric, (label, higher) in METRICS.items():
        values = {action: [_metric(r, action, metric) for r in runs] for action in actions}
        values["mean over actions"] = [_mean([v[i] for v in values.values()]) for i in range(len(runs))]
        rows = [
            {"action": action, "values": v, "deltas": [x - v[0] for x in v[1:]]}
            for action, v in values.items()
        ]
        tables.append({"metric": metric, "label": label, "higher": higher, "rows": rows})
    return tables


def _metric(run: TrainRun, action: str, metric: str) -> float:
    found = run.actions.get(action)
    return float(found.metrics.get(metric, math.nan)) if found else math.nan


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def auc_chart(runs: list[TrainRun], actions: list[str]) -> Markup:
    fig = go.Figure([
        go.Bar(name=r.label, x=actions, y=[_metric(r, a, "roc_auc") for a in actions],
               marker_color=html.COLORS[i % len(html.COLORS)])
        for i, r in enumerate(runs)
    ])  # fmt: skip
    values = [_metric(r, a, "roc_auc") for r in runs for a in actions]
    low = min([0.4, *(v - 0.05 for v in values if not math.isnan(v))])
    fig.update_layout(title="ROC-AUC on each run's test split", barmode="group", yaxis={"range": [low, 1]})
    return html.figure(fig, height=420)


def _grid(actions: list[str]) -> go.Figure:
    rows = max(1, math.ceil(len(actions) / GRID_COLUMNS))
    return make_subplots(rows=rows, cols=GRID_COLUMNS, subplot_titles=actions, vertical_spacing=0.08)


def _cell(index: int) -> dict[str, int]:
    return {"row": index // GRID_COLUMNS + 1, "col": index % GRID_COLUMNS + 1}


def lift_chart(runs: list[TrainRun], actions: list[str]) -> Markup:
    fig = _grid(actions)
    for i, action in enumerate(actions):
        for j, run in enumerate(runs):
            found = run.actions.get(action)
            if found is None or found.lift is None:
                continue
            fig.add_trace(
                go.Scatter(x=found.lift["share"], y=found.lift["lift"], mode="lines+markers", name=run.label,
                           legendgroup=run.label, showlegend=i == 0,
                           line={"color": html.COLORS[j % len(html.COLORS)]}),
                **_cell(i),
            )  # fmt: skip
    fig.update_layout(title="Lift by share of members contacted (test split; 1 = random)")
    return html.figure(fig, height=260 * math.ceil(len(actions) / GRID_COLUMNS) + 80)


def reliability_chart(runs: list[TrainRun], actions: list[str]) -> Markup:
    fig = _grid(actions)
    for i, action in enumerate(actions):
        top = 0.01
        for j, run in enumerate(runs):
            found = run.actions.get(action)
            if found is None or found.reliability is None:
                continue
            curve = found.reliability
            top = max(top, float(curve[["predicted", "observed"]].to_numpy().max()))
            fig.add_trace(
                go.Scatter(x=curve["predicted"], y=curve["observed"], mode="lines+markers", name=run.label,
                           legendgroup=run.label, showlegend=i == 0,
                           line={"color": html.COLORS[j % len(html.COLORS)]}),
                **_cell(i),
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=[0, top], y=[0, top], mode="lines", showlegend=False, hoverinfo="skip",
                       line={"color": "grey", "dash": "dash"}),
            **_cell(i),
        )  # fmt: skip
    fig.update_layout(title="Reliability: observed rate against predicted probability, ten equal-count bins")
    return html.figure(fig, height=260 * math.ceil(len(actions) / GRID_COLUMNS) + 80)


def shap_changes(runs: list[TrainRun], actions: list[str]) -> dict[str, pd.DataFrame]:
    """Per action: mean |SHAP| of its features in each run, the change from the first run, ranks."""
    out = {}
    for action in actions:
        tables = []
        for run in runs:
            found = run.actions.get(action)
            if found is not None and found.shap is not None:
                t = found.shap.set_index("feature")["mean_abs_shap"].rename(run.label)
                tables.append(t)
        if not tables:
            continue
        merged = pd.concat(tables, axis=1).fillna(0.0)
        first, last = merged.columns[0], merged.columns[-1]
        merged["change"] = merged[last] - merged[first]
        merged["rank_first"] = merged[first].rank(ascending=False, method="min").astype(int)
        merged["rank_last"] = merged[last].rank(ascending=False, method="min").astype(int)
        key = merged["change"].abs() if len(tables) > 1 else merged[first]
        out[action] = merged.loc[key.sort_values(ascending=False).index].head(SHAP_TOP)
    return out


def shap_chart(changes: dict[str, pd.DataFrame]) -> Markup:
    rows = [(f"{a}: {f}", float(t.loc[f, "change"])) for a, t in changes.items() for f in t.index]
    rows = sorted(rows, key=lambda r: abs(r[1]), reverse=True)[:20][::-1]
    fig = go.Figure(
        go.Bar(x=[v for _, v in rows], y=[n for n, _ in rows], orientation="h",
               marker_color=[html.COLORS[2] if v > 0 else html.COLORS[1] for _, v in rows])
    )  # fmt: skip
    fig.update_layout(
        title="Largest changes in mean |SHAP| (last run minus first)", yaxis={"automargin": True}
    )
    return html.figure(fig, height=max(300, 24 * len(rows) + 120))


# -- online ----------------------------------------------------------------------------------------


def rates_chart(result: Online) -> Markup:
    """Acceptance and click rates per variant and action, with their 95% Wilson intervals."""
    table = result.exposure_table
    fig = make_subplots(rows=1, cols=2, subplot_titles=("acceptance rate", "click rate"))
    for col, event in enumerate(("accepted", "clicked"), start=1):
        for j, (variant, part) in enumerate(sorted(table.groupby("variant"), key=lambda kv: str(kv[0]))):
            rate = part[f"{event}_rate"]
            errors = {"type": "data", "symmetric": False, "array": part[f"{event}_high"] - rate,
                      "arrayminus": rate - part[f"{event}_low"]}  # fmt: skip
            fig.add_trace(
                go.Bar(name=str(variant), x=part["action_id"], y=rate, legendgroup=str(variant),
                       showlegend=col == 1, marker_color=html.COLORS[j % len(html.COLORS)], error_y=errors),
                row=1, col=col,
            )  # fmt: skip
    fig.update_layout(title="Rates per exposure (descriptive), with 95% Wilson intervals", barmode="group")
    return html.figure(fig, height=480)


def uplift_chart(result: Online) -> Markup:
    """Acceptance uplift of each variant against the reference, per action, with 95% intervals."""
    table = result.member_table[result.member_table["variant"] != result.reference]
    fig = go.Figure()
    for j, (variant, part) in enumerate(sorted(table.groupby("variant"), key=lambda kv: str(kv[0]))):
        d = 100 * part["accepted_uplift"]
        fig.add_trace(
            go.Scatter(name=str(variant), y=part["action_id"], x=d, mode="markers",
                       marker={"size": 10, "color": html.COLORS[(j + 1) % len(html.COLORS)]},
                       error_x={"type": "data", "symmetric": False,
                                "array": 100 * part["accepted_uplift_high"] - d,
                                "arrayminus": d - 100 * part["accepted_uplift_low"]})
        )  # fmt: skip
    fig.add_vline(x=0, line_dash="dash", line_color="grey")
    fig.update_layout(
        title=f"Acceptance uplift against the {result.reference}: share of members, points (95% CI)",
        xaxis_title="points",
        yaxis={"automargin": True, "autorange": "reversed"},
    )
    return html.figure(fig, height=max(300, 26 * table["action_id"].nunique() + 140))


# -- the page --------------------------------------------------------------------------------------


def experiment_report(
    sources: Sources,
    runs: list[str] | None = None,
    experiments: list[str] | None = None,
    offline: bool = True,
    with_online: bool = True,
    reliability: bool = True,
) -> ExperimentReport:
    """The page; the offline part reads MLflow, the online part the serving database."""
    loaded = load_runs(sources.tracking_uri, runs or [], experiments or [], reliability) if offline else []
    result = online(sources) if with_online else None
    if not loaded and result is None:
        raise ReportError("nothing to report: ask for the offline part, the online part, or both")
    actions = action_ids(loaded, sources)
    changes = shap_changes(loaded, actions) if loaded else {}
    context: dict[str, Any] = {
        "runs": loaded,
        "actions": actions,
        "defaulted": offline and not runs and not experiments,
        "metric_tables": metric_tables(loaded, actions) if loaded else [],
        "charts": {},
        "shap": changes,
        "online": result,
        "online_actions": per_action_rows(result) if result is not None else [],
        "events": EVENTS,
        "database": sources.database_label,
        "tracking_uri": sources.tracking_uri,
    }
    if loaded:
        context["charts"] |= {"auc": auc_chart(loaded, actions), "lift": lift_chart(loaded, actions),
                              "reliability": reliability_chart(loaded, actions)}  # fmt: skip
        if changes:
            context["charts"]["shap"] = shap_chart(changes)
    if result is not None and result.exposures:
        context["charts"]["rates"] = rates_chart(result)
        if result.reference is not None and result.member_table["variant"].nunique() > 1:
            context["charts"]["uplift"] = uplift_chart(result)
    page = html.render("experiments.html", title="Experiment report", **context)
    return ExperimentReport(loaded, result, page)
