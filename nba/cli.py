"""The ``nba`` command line: thin Typer commands over plain library functions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from nba.errors import NbaError

if TYPE_CHECKING:
    from training.evaluate import Evaluation

app = typer.Typer(
    name="nba",
    help="Prevention and cross-sell next best actions for a mutual health insurer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def parse_date(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} must be a date YYYY-MM-DD; got {value!r}") from None


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    members: Annotated[int, typer.Option(help="Number of member contracts.")] = 5000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 36,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    extract_date: Annotated[
        str | None, typer.Option("--extract-date", help="Last day of the extract, YYYY-MM-DD.")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Members generated per chunk (memory bound).")
    ] = 50_000,
    workers: Annotated[int, typer.Option(help="Processes; 0 means one per core.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Write a synthetic French mutuelle world (six tables plus ground_truth/)."""
    from features.synthetic import WorldConfig, generate_world
    from nba.progress import progress_bar

    try:
        config = WorldConfig(
            members=members,
            months=months,
            seed=seed,
            extract_date=parse_date("--extract-date", extract_date) or WorldConfig.extract_date,
            chunk_size=chunk_size,
            workers=workers,
        )
        with progress_bar("generating members", total=members) as advance:
            summary = generate_world(config, out, overwrite=overwrite, on_progress=advance)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"wrote {summary.rows['members']:,} member versions, {summary.rows['claims']:,} claims "
        f"and {sum(summary.rows.values()):,} rows in all to {out} in {summary.seconds:.1f} s"
    )


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="Folder holding the six source tables.")],
    extract_date: Annotated[
        str | None,
        typer.Option("--extract-date", help="Extract date; default: the folder's extract.json."),
    ] = None,
) -> None:
    """Check source tables against the data contract; exit 1 with a report if any rule fails."""
    from features.contract import validate_world

    try:
        report = validate_world(data, extract_date=parse_date("--extract-date", extract_date))
    except NbaError as exc:
        raise fail(str(exc)) from None
    if report.ok:
        console.print(report.summary_line(), highlight=False)
        return
    console.print(report.render(), highlight=False)
    raise typer.Exit(1)


features_app = typer.Typer(help="Member profiles: build them as of a date, publish them online.")
app.add_typer(features_app, name="features")


def required_date(option: str, value: str) -> dt.date:
    parsed = parse_date(option, value)
    assert parsed is not None
    return parsed


@features_app.command("build")
def features_build(
    data: Annotated[Path, typer.Option("--data", help="Folder holding the source tables.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Profiles as of this date, YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark.")] = "duckdb",
) -> None:
    """Member profiles as of a date, using only facts dated before it."""
    from features.build import build_profiles, write_profiles

    day = required_date("--as-of", as_of)
    try:
        with console.status(f"building profiles as of {day} on {engine}"):
            table = build_profiles(data, day, engine=engine)
        write_profiles(table, out)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(f"wrote {table.num_rows:,} profiles x {table.num_columns - 2} features to {out}")


@features_app.command("publish")
def features_publish(
    data: Annotated[Path, typer.Option("--data", help="Folder holding the source tables.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Profiles as of this date, YYYY-MM-DD.")],
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark.")] = "duckdb",
) -> None:
    """Load the profiles as of a date into the online store (NBA_DATABASE_URL), atomically."""
    from features.publish import publish_profiles
    from nba.settings import get_settings

    day = required_date("--as-of", as_of)
    try:
        url = get_settings().database_url
        with console.status(f"building and publishing profiles as of {day}"):
            load = publish_profiles(data, day, url=url, engine=engine)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"published load {load.load_id}: {load.members:,} profiles as of {load.as_of}, "
        f"feature set {load.feature_set_version}, to {redact(url)}"
    )


def redact(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _tracking_uri() -> str:
    from nba.settings import get_settings

    return get_settings().mlflow_tracking_uri


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Folder holding the source tables.")],
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "nba",
    months: Annotated[int, typer.Option(help="Monthly as-of dates of history to learn from.")] = 18,
) -> None:
    """Train every action's model, log it to MLflow and register it as challenger."""
    from training.pipeline import train_all

    if months < 6:
        raise fail(f"--months must be at least 6 (training, validation and test dates); got {months}")
    try:
        with console.status("building training sets and training") as status:
            result = train_all(
                data, experiment=experiment, tracking_uri=_tracking_uri(), months=months,
                on_action=lambda a: status.update(f"training {a}"),
            )  # fmt: skip
    except NbaError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"nba train: run {result.parent_run_id} in experiment {result.experiment!r}")
    table.add_column("action", no_wrap=True)
    for col in ("v", "AUC", "PR-AUC", "lift10", "ECE", "rows"):
        table.add_column(col, justify="right")
    for a in result.actions:
        m = a.metrics
        table.add_row(a.action_id, a.version, f"{m['roc_auc']:.3f}", f"{m['pr_auc']:.3f}",
                      f"{m['lift_10']:.2f}", f"{m['ece']:.3f}", f"{m['rows']:,.0f}")  # fmt: skip
    console.print(table)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Folder holding the source tables.")],
    experiment: Annotated[str, typer.Option(help="MLflow experiment to log the evaluation to.")] = "nba",
    months: Annotated[int, typer.Option(help="Monthly as-of dates, as for nba train.")] = 18,
) -> None:
    """Each action's champion against baselines and the oracle, on the test split."""
    from training.evaluate import evaluate as run_evaluate

    try:
        with console.status("scoring the test split"):
            result = run_evaluate(data, _tracking_uri(), experiment=experiment, months=months)
    except (NbaError, LookupError) as exc:
        raise fail(str(exc)) from None
    console.print(evaluation_tables(result))


def evaluation_tables(result: Evaluation) -> Table:
    """ROC-AUC per action and scorer, the share of the oracle's gain, then MAP@3 / NDCG@3."""
    wide = result.per_action.pivot(index="action", columns="scorer", values="roc_auc")
    table = Table(title="ROC-AUC on the test split (eligible members)")
    table.add_column("action", no_wrap=True)
    for col in ("model", "popul.", "rules", "logit", "oracle", "model/oracle"):
        table.add_column(col, justify="right")
    for action, row in wide.iterrows():
        share = (row["model"] - 0.5) / (row["oracle"] - 0.5) if row["oracle"] > 0.5 else float("nan")
        table.add_row(str(action), *(f"{row[s]:.3f}" for s in ("model", "popularity", "rules",
                      "logistic", "oracle")), f"{share:.2f}")  # fmt: skip
    for r in result.ranking.itertuples():
        table.add_row(f"MAP@3 / NDCG@3: {r.scorer}", f"{r.map_3:.3f}", f"{r.ndcg_3:.3f}", "", "", "", "")
    return table


@app.command()
def promote(
    action: Annotated[str | None, typer.Option("--action", help="One action id; default: all.")] = None,
    max_auc_drop: Annotated[float, typer.Option(help="Largest ROC-AUC drop allowed.")] = 0.005,
    min_lift_ratio: Annotated[float, typer.Option(help="Smallest lift@10% ratio allowed.")] = 1.0,
) -> None:
    """Make each challenger champion when it passes the gates against the current champion."""
    from nba import vocab
    from training.promote import Gates
    from training.promote import promote as run_promote

    if action is not None and action not in vocab.ACTION_IDS:
        raise fail(f"--action must be one of {list(vocab.ACTION_IDS)}; got {action!r}")
    ids = [action] if action else list(vocab.ACTION_IDS)
    try:
        decisions = run_promote(_tracking_uri(), ids, Gates(max_auc_drop, min_lift_ratio))
    except NbaError as exc:
        raise fail(str(exc)) from None
    for d in decisions:
        mark = "[green]promoted[/]" if d.promoted else "[yellow]kept[/]"
        champion = f"v{d.champion}" if d.champion else "none"
        console.print(f"{d.action_id}: {mark} (challenger v{d.challenger}, champion {champion}): {d.reason}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the demo world.")] = Path(
        "out/demo-world"
    ),
    members: Annotated[int, typer.Option(help="Number of member contracts.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """A small world end to end: generate, validate, and show it next to the public figures."""
    from features.contract import validate_world
    from features.synthetic import WorldConfig, generate_world
    from features.synthetic.summary import summarize
    from nba.progress import progress_bar
    from nba.render import world_summary

    try:
        config = WorldConfig(members=members, months=36, seed=seed)
        with progress_bar("generating members", total=members) as advance:
            generated = generate_world(config, out, overwrite=True, on_progress=advance)
        console.print(f"generated {out} in {generated.seconds:.1f} s")
        report = validate_world(out, extract_date=None)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(report.summary_line() if report.ok else report.render(), highlight=False)
    if not report.ok:
        raise typer.Exit(1)
    console.print(world_summary(summarize(out)))
    _demo_profiles(out)


def _demo_profiles(world: Path) -> None:
    """Build and publish profiles as of the day after the extract; show one member in French."""
    import json

    from features.build import build_profiles, write_profiles
    from features.publish import profiles_frame
    from features.registry import feature_set_version
    from features.store import OnlineStore
    from nba.render import profile_card
    from nba.settings import get_settings

    extract = dt.date.fromisoformat(json.loads((world / "extract.json").read_text())["extract_date"])
    as_of = extract + dt.timedelta(days=1)
    try:
        with console.status(f"building profiles as of {as_of}"):
            table = build_profiles(world, as_of)
        path = world.with_name(world.name + "-profiles.parquet")
        write_profiles(table, path)
        store = OnlineStore.from_url(get_settings().database_url)
        with console.status("publishing them to the online store"):
            load = store.publish(profiles_frame(table), as_of, feature_set_version())
        console.print(
            f"profiles: {table.num_rows:,} members x {table.num_columns - 2} features as of {as_of} "
            f"in {path}; published as load {load.load_id} to {redact(get_settings().database_url)}"
        )
        frame = table.to_pandas()
        busy = frame.sort_values(
            ["n_children", "dental_count_12m", "member_id"], ascending=[False, False, True]
        )
        profile = store.get(int(busy.iloc[0]["member_id"]))
        store.close()
    except NbaError as exc:
        raise fail(str(exc)) from None
    assert profile is not None
    console.print(profile_card(profile.member_id, profile.values, as_of))


def main() -> None:  # pragma: no cover - console script
    app()
