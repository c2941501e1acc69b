"""Rendering: Jinja2 templates, plotly figures without a CDN, Markdown, atomic files.

Every page carries the plotly.js bundle once, inlined in a ``<script>`` element, and each figure
is a ``<div>`` plus the call that draws it: the file opens with no network. Autoescaping is on
for every template; only the bundle, figures and rendered Markdown are marked safe.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from nba.errors import ConfigError

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
COLORS = ("#1f6f8b", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#2c3e50")


@lru_cache(maxsize=1)
def plotly_js() -> Markup:
    """The plotly.js bundle shipped with the plotly package (no network)."""
    from plotly.offline import get_plotlyjs

    script = get_plotlyjs()
    if "</script" in script.lower():  # would end the inline element early
        script = script.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return Markup(script)


def figure(fig: go.Figure, height: int | None = None) -> Markup:
    """A figure as a ``<div>`` and its drawing script; plotly.js itself comes once per page."""
    fig.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
        font={"family": "system-ui, sans-serif", "size": 12},
        **({"height": height} if height else {}),
    )
    div_id = f"fig-{uuid.uuid4().hex[:10]}"
    html = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG, div_id=div_id)
    return Markup(html)


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str) -> Markup:
    """CommonMark with tables; raw HTML in the text is escaped, never passed through."""
    return Markup(_markdown().render(text))


def number(value: object, digits: int = 3) -> str:
    """A number for a table cell: ``—`` when missing, thousands separated, fixed decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def signed(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):+,.{digits}f}"  # type: ignore[arg-type]


def percent(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * float(value):.{digits}f} %"  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, signed=signed, percent=percent)
    return env


def render(template: str, **context: Any) -> str:
    """A page from ``templates/TEMPLATE`` with the plotly bundle and the time it was made."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return environment().get_template(template).render(plotly_js=plotly_js(), generated_at=now, **context)


def check_out(path: Path) -> Path:
    """``path`` if it names an HTML file; raises ConfigError otherwise (before any work starts)."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out must name an .html file; got {str(path)!r}")
    if path.is_dir():
        raise ConfigError(f"--out must name a file; {str(path)!r} is a folder")
    return path


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed over it: readers never see half."""
    path = check_out(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
