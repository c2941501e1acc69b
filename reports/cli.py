"""``nba report ...``: write the HTML reports to files (thin commands over `reports`).

Heavy imports happen inside the commands, so ``nba --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from nba.errors import NbaError

if TYPE_CHECKING:
    from reports.sources import Sources

report_app = typer.Typer(
    help="HTML reports: experiments (offline and online), compliance (proofs, fairness, model cards), "
    "one decision. Pages are self-contained: they open with no network.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)
OUT = typer.Option("--out", help="HTML file to write (atomically: a temporary file, then a rename).")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _names(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated lists alike: ``--runs a --runs b`` or ``--runs a,b``."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@contextlib.contextmanager
def _opened() -> Iterator[Sources]:
    """The stores of NBA_DATABASE_URL and NBA_MLFLOW_TRACKING_URI, closed afterwards."""
    from nba.settings import get_settings
    from reports.sources import Sources

    sources = Sources.from_settings(get_settings(fresh=True))
    try:
        yield sources
    finally:
        sources.close()


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


@report_app.command("experiments")
def experiments(
    out: Annotated[Path, OUT],
    runs: Annotated[
        list[str] | None,
        typer.Option("--runs", help="MLflow run ids of `nba train` runs; the first is the baseline."),
    ] = None,
    experiment_names: Annotated[
        list[str] | None,
        typer.Option("--experiments", help="MLflow experiments: each one's latest train run."),
    ] = None,
    offline: Annotated[bool, typer.Option(help="Compare training runs from MLflow.")] = True,
    online: Annotated[bool, typer.Option(help="Compare serving variants from the database.")] = True,
) -> None:
    """Training runs side by side (metrics, lift, calibration, SHAP) and online variants with uplift."""
    from reports.experiments import experiment_report
    from reports.html import check_out, write_atomic

    try:
        check_out(out)
        with _opened() as sources, console.status("reading runs and decisions"):
            report = experiment_report(sources, _names(runs), _names(experiment_names), offline, online)
        write_atomic(out, report.html)
    except NbaError as exc:
        raise _fail(str(exc)) from None
    labels = ", ".join(r.label for r in report.runs) or "none"
    console.print(f"wrote {out} ({_size(out)}): offline runs {labels}", highlight=False)
    if report.online is not None:
        console.print(f"online: {report.online.sentence}", highlight=False)


@report_app.command("compliance")
def compliance(
    out: Annotated[Path, OUT],
    replay_sample: Annotated[
        int,
        typer.Option("--replay-sample", min=1, help="Decisions replayed for proof 4 (spread over the log)."),
    ] = 50,
) -> None:
    """The proofs of COMPLIANCE.md as queries with their counts, fairness, the champions' model cards.

    Exits 1 (after writing the page) when a proof does not hold or cannot run.
    """
    from reports.compliance import compliance_report
    from reports.html import check_out, write_atomic

    try:
        check_out(out)
        with _opened() as sources, console.status("running the proofs, fairness and model cards"):
            report = compliance_report(sources, replay_sample)
        write_atomic(out, report.html)
    except NbaError as exc:
        raise _fail(str(exc)) from None
    console.print(f"wrote {out} ({_size(out)}) over {report.decisions:,} decisions", highlight=False)
    for proof in report.proofs:
        mark = "[green]0[/]" if proof.ok else f"[red]{proof.count if proof.error is None else 'error'}[/]"
        console.print(
            f"  proof {proof.key}: {mark} {proof.unit} breaking it — {proof.title}", highlight=False
        )
        if proof.error:
            console.print(f"    [red]{proof.error}[/]", highlight=False)
    flagged = report.fairness.flagged
    console.print(
        f"  fairness: {report.fairness.members:,} members, {flagged} ratios below 0.8 flagged for review"
    )
    console.print(
        f"  model cards: {sum(c.markdown is not None for c in report.cards)} of {len(report.cards)} read"
    )
    if report.failed or not report.chain.ok:
        raise _fail("the compliance report found problems: see the page", code=1)


@report_app.command("decision")
def decision(
    request_id: Annotated[str, typer.Argument(help="The request_id of a logged decision.")],
    out: Annotated[Path, OUT],
    replay: Annotated[
        bool, typer.Option(help="Replay the decision and show whether it is identical.")
    ] = True,
) -> None:
    """One decision as compliance reads it; the read is logged in the audit log's reads."""
    from reports.decision import decision_page
    from reports.html import check_out, write_atomic
    from serving.audit import AuditLog

    try:
        check_out(out)
        with _opened() as sources:
            page = decision_page(sources, request_id, with_replay=replay)
            write_atomic(out, page)
            AuditLog(sources.engine).log_read(request_id, f"cli:{getpass.getuser()}", "compliance")
    except NbaError as exc:
        raise _fail(str(exc)) from None
    console.print(f"wrote {out} ({_size(out)}) for decision {request_id}", highlight=False)
