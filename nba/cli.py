"""The ``nba`` command line: thin Typer commands over plain library functions."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.table import Table

from nba.errors import NbaError
from reports.cli import report_app

if TYPE_CHECKING:
    from training.evaluate import Evaluation

app = typer.Typer(
    name="nba",
    help="Prevention and cross-sell next best actions for a mutual health insurer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 120)
"""Tables keep their numbers whole in logs and pipes, where Rich would assume 80 columns."""
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
    months: Annotated[int, typer.Option(help="Months of history.")] = 48,
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
    months: Annotated[int, typer.Option(help="Monthly as-of dates of history to learn from.")] = 36,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file of model hyper-parameters (training/config.py)."),
    ] = None,
) -> None:
    """Train every action's model, log it to MLflow and register it as challenger."""
    from training.config import load_model_config
    from training.pipeline import train_all

    if months < 6:
        raise fail(f"--months must be at least 6 (training, validation and test dates); got {months}")
    try:
        model_config = load_model_config(config) if config is not None else None
        with console.status("building training sets and training") as status:
            result = train_all(
                data, experiment=experiment, tracking_uri=_tracking_uri(), months=months,
                config=model_config, on_action=lambda a: status.update(f"training {a}"),
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
    months: Annotated[int, typer.Option(help="Monthly as-of dates, as for nba train.")] = 36,
) -> None:
    """Each action's champion against baselines and the oracle, on the test split."""
    from training.evaluate import evaluate as run_evaluate

    try:
        with console.status("scoring the test split"):
            result = run_evaluate(data, _tracking_uri(), experiment=experiment, months=months)
    except (NbaError, LookupError) as exc:
        raise fail(str(exc)) from None
    console.print(evaluation_tables(result))


def evaluation_tables(result: Evaluation) -> Group:
    """ROC-AUC per action and scorer, the share of the oracle's gain with its 90% bootstrap
    interval over the test rows; then MAP@3 / NDCG@3 per scorer."""
    wide = result.per_action.pivot(index="action", columns="scorer", values="roc_auc")
    shares = result.shares.set_index("action")
    table = Table(title="ROC-AUC on the test split (eligible members)")
    table.add_column("action", no_wrap=True)
    for col in ("model", "popul.", "rules", "logit", "oracle", "model/oracle", "90% interval"):
        table.add_column(col, justify="right", no_wrap=True)
    for action, row in wide.iterrows():
        share = shares.loc[str(action)]
        interval = f"{share['low']:.2f}-{share['high']:.2f}" if share["low"] == share["low"] else ""
        table.add_row(str(action), *(f"{row[s]:.3f}" for s in ("model", "popularity", "rules",
                      "logistic", "oracle")), f"{share['share']:.2f}", interval)  # fmt: skip
    ranking = Table(title="Each member's ranked actions (members with a positive)")
    for col in ("scorer", "MAP@3", "NDCG@3"):
        ranking.add_column(col, justify="left" if col == "scorer" else "right", no_wrap=True)
    for r in result.ranking.itertuples():
        ranking.add_row(str(r.scorer), f"{r.map_3:.3f}", f"{r.ndcg_3:.3f}")
    return Group(table, ranking)


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
    serve: Annotated[bool, typer.Option("--serve", help="Keep the service running at the end.")] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Service port (0: any free port).")] = 0,
) -> None:
    """A small world end to end: generate, validate, profiles, train, promote, evaluate, publish,
    then start the service and show three members' recommendations with their explanations."""
    from features.contract import validate_world
    from features.synthetic import WorldConfig, generate_world
    from features.synthetic.summary import summarize
    from nba.progress import progress_bar
    from nba.render import world_summary

    try:
        config = WorldConfig(members=members, seed=seed)
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
    members_shown = _demo_profiles(out)
    _demo_models(out)
    _demo_service(out, members_shown, keep=serve, port=port)


def _demo_profiles(world: Path) -> list[int]:
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
    adults = frame[(frame["age"] >= 30) & (frame["age"] < 62) & frame["online_account"]]
    return [int(m) for m in adults.sort_values("member_id")["member_id"].iloc[::7][:12]]


def _demo_models(world: Path, months: int = 12) -> None:
    """Train every action, promote the challengers that pass the gates, print the evaluation."""
    from training.evaluate import evaluate as run_evaluate
    from training.pipeline import train_all
    from training.promote import promote as run_promote

    try:
        with console.status("training one model per action") as status:
            result = train_all(world, experiment="nba-demo", tracking_uri=_tracking_uri(), months=months,
                               on_action=lambda a: status.update(f"training {a}"))  # fmt: skip
        decisions = run_promote(_tracking_uri(), [a.action_id for a in result.actions])
        promoted = sum(d.promoted for d in decisions)
        console.print(
            f"trained {len(result.actions)} models (run {result.parent_run_id}); promoted {promoted}"
        )
        with console.status("evaluating the champions against baselines and the oracle"):
            evaluation = run_evaluate(world, _tracking_uri(), experiment="nba-demo", months=months)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(evaluation_tables(evaluation))


def _demo_service(world: Path, members: list[int], keep: bool, port: int) -> None:
    """Consent history and API keys into the database, then the service, then three members."""
    from nba import demo as service_demo
    from nba.settings import get_settings
    from serving.consent import ConsentStore
    from serving.db import open_engine
    from serving.keys import KeyStore

    try:
        engine = open_engine(get_settings().database_url)
        ConsentStore(engine).import_world(world)
        keys = {role: KeyStore(engine).create(role) for role in ("app", "compliance")}
        engine.dispose()
        port = port or service_demo.free_port()
        log = world.parent / "serve.log"
        console.print(f"starting the service on port {port} (log: {log})")
        with service_demo.running_service(port, log, keep=keep) as url:
            service_demo.demo_requests(console, url, keys, members)
            if keep:
                service_demo.how_to_call(console, url, keys, members[0])
    except NbaError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        console.print("service stopped")


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """The BentoML service (same as `bentoml serve serving.service:NextBestAction`)."""
    import os
    import sys

    from nba.settings import get_settings

    try:
        settings = get_settings(fresh=True)
    except NbaError as exc:
        raise fail(str(exc)) from None
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", "serving.service:NextBestAction", "--host", host, "--port", str(port)]
    console.print(
        f"serving on http://{host}:{port} (OpenAPI page /docs) with {redact(settings.database_url)} "
        f"and models from {settings.mlflow_tracking_uri}",
        highlight=False,
    )
    env = {"OMP_NUM_THREADS": "1"} | dict(os.environ) | {"NBA_WORKERS": str(workers)}
    os.execve(bentoml, command, env)


@app.command()
def simulate(
    days: Annotated[int, typer.Option("--days", help="Days of app traffic to simulate.")],
    requests_per_day: Annotated[
        int, typer.Option("--requests-per-day", help="Members who open the app each day.")
    ],
    seed: Annotated[int, typer.Option(help="Random seed: who comes, and what they do.")] = 0,
    data: Annotated[
        Path, typer.Option("--data", help="The world the service was published from (its ground truth).")
    ] = Path("out/demo-world"),
    url: Annotated[str, typer.Option(help="The running service.")] = "http://127.0.0.1:3000",
    key: Annotated[
        str, typer.Option(envvar="NBA_API_KEY", help="An API key with the app role.", show_default=False)
    ] = "",
    concurrency: Annotated[int, typer.Option(help="Members served at once.")] = 8,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the summary as JSON here.")] = None,
) -> None:
    """Drive the running service with app traffic; members respond by the world's ground truth."""
    from nba.simulate import COUNTED, write_summary
    from nba.simulate import simulate as run_simulation

    try:
        with console.status("simulating day 1") as status:
            result = run_simulation(
                url, key, data, days, requests_per_day, seed=seed, concurrency=concurrency,
                on_day=lambda d: status.update(f"simulated {d} of {days} days"),
            )  # fmt: skip
        if out is not None:
            write_summary(result, out)
    except NbaError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"nba simulate: {days} days x {requests_per_day:,} members (seed {seed})")
    table.add_column("variant")
    for col in (*COUNTED, "accepted/shown"):
        table.add_column(col, justify="right")
    for variant, c in sorted(result.by_variant.items()):
        rate = c["accepted"] / c["shown"] if c["shown"] else 0.0
        table.add_row(variant, *(f"{c[k]:,}" for k in COUNTED), f"{rate:.1%}")
    console.print(table)
    if result.unanswered:
        console.print(
            f"unanswered: {dict(result.unanswered)} (404: member unknown, 503: no decision possible)"
        )
    console.print(f"responses drawn from the ground truth of {result.truth_month}; "
                  "compare the variants with `nba report experiments`")  # fmt: skip


@app.command()
def replay(
    request_id: Annotated[str, typer.Argument(help="The request_id of a logged decision.")],
) -> None:
    """Recompute a logged decision from its recorded inputs and model versions."""
    from nba.catalogue import default_catalogue
    from nba.settings import get_settings
    from serving.audit import AuditLog
    from serving.db import open_engine
    from serving.models import ModelSet, mlflow_client
    from serving.replay import replay as replay_record

    try:
        settings = get_settings(fresh=True)
        record = AuditLog(open_engine(settings.database_url)).get(request_id)
        if record is None:
            raise fail(f"request_id {request_id!r} has no decision record in {redact(settings.database_url)}")
        catalogue = default_catalogue()
        models = ModelSet({}, {}, {}, client=mlflow_client(settings.mlflow_tracking_uri), catalogue=catalogue)
        report = replay_record(record, models, catalogue)
    except NbaError as exc:
        raise fail(str(exc)) from None
    table = Table("action", "model version", "recorded score", "replayed score", "identical")
    for row in report.scores:
        table.add_row(row["action_id"], row["model_version"], repr(row["recorded"]), repr(row["replayed"]),
                      "yes" if row["identical"] else "[red]no[/]")  # fmt: skip
    console.print(table)
    console.print(f"recorded ranking: {report.recorded_ranking}\nreplayed ranking: {report.replayed_ranking}")
    if not report.identical:
        raise fail(f"decision {request_id} does NOT replay identically", code=1)
    console.print(f"decision {request_id} replays identically", style="green")


@app.command("train-table")
def train_table(
    file: Annotated[Path, typer.Argument(help="Parquet or CSV table: one row per example.")],
    label: Annotated[str, typer.Option("--label", help="The 0/1 column to predict.")],
    name: Annotated[str, typer.Option("--name", help="Registered model name.")],
    id_column: Annotated[
        str | None, typer.Option("--id", help="Key column carried to the scores, never a feature.")
    ] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "nba-tables",
    seed: Annotated[int, typer.Option(help="Seed of the split, the folds and LightGBM.")] = 0,
    folds: Annotated[int, typer.Option(help="Cross-validation folds that pick the rounds.")] = 5,
    threads: Annotated[int, typer.Option(help="LightGBM threads; 1 is often faster on small tables.")] = 2,
) -> None:
    """Train the LightGBM pipeline on any table with a 0/1 label and register it as NAME."""
    from training.models import ModelConfig
    from training.table import train_table as run_train_table

    try:
        with console.status(f"training on {file}"):
            r = run_train_table(
                file, label, name, id_column=id_column, experiment=experiment, tracking_uri=_tracking_uri(),
                config=ModelConfig(seed=seed), folds=folds, threads=threads,
            )  # fmt: skip
    except NbaError as exc:
        raise fail(str(exc)) from None
    s, m = r.schema, r.metrics
    table = Table(title=f"nba train-table: {r.name} v{r.version} (alias challenger)", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("rows", f"{sum(r.rows.values()):,}: train {r.rows['train']:,}, calibration "
                  f"{r.rows['valid']:,}, test {r.rows['test']:,} (stratified on {s.label!r})")  # fmt: skip
    levels = {f: f", {len(v)} levels" for f, v in s.levels.items()}
    kinds = s.kinds | dict.fromkeys([f for f, k in s.kinds.items() if k == "date"], "date as days")
    used = ", ".join(f"{f} ({kinds[f]}{levels.get(f, '')})" for f in s.features)
    table.add_row(f"features ({len(s.features)})", used)
    dropped = "\n".join(f"{c}: {why}" for c, why in s.dropped.items())
    table.add_row(f"dropped ({len(s.dropped)})", dropped or "none")
    table.add_row("rounds", f"{r.rounds} ({folds}-fold cross-validated early stopping)")
    table.add_row("test", f"ROC-AUC {m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}, Brier {m['brier']:.4f}, "
                  f"lift@10% {m['lift_10']:.2f}")  # fmt: skip
    table.add_row("run", f"{r.run_id} in experiment {r.experiment!r}")
    console.print(table)


@app.command("score-table")
def score_table(
    file: Annotated[Path, typer.Argument(help="Parquet or CSV table with the model's columns.")],
    name: Annotated[str, typer.Option("--name", help="Model registered by nba train-table.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet or CSV file to write.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version number or alias; default: the latest.")
    ] = None,
) -> None:
    """Write each row's calibrated score and its three strongest contributions (TreeSHAP)."""
    from training.table import score_table as run_score_table

    try:
        with console.status(f"scoring {file} with {name}"):
            r = run_score_table(file, name, out, version=version, tracking_uri=_tracking_uri())
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(f"scored {r.rows:,} rows of {file} with {r.name} v{r.version}: {r.out}", highlight=False)
    for column, (rows, examples) in r.unseen.items():
        console.print(f"note: {column}: {rows:,} rows hold a level unseen in training ({examples}), "
                      "scored as missing", highlight=False)  # fmt: skip


# -- serving stores: API keys, decision audit log, consent registry ----------------------------

keys_app = typer.Typer(help="API keys of the service: one role each, stored only as a hash.")
audit_app = typer.Typer(help="The decision audit log: append-only and hash-chained.")
consent_app = typer.Typer(help="The consent registry: append-only consent events.")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(consent_app, name="consent")
app.add_typer(report_app, name="report")


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option("--role", help="app, compliance or admin.")]) -> None:
    """Create an API key (NBA_DATABASE_URL); it is printed once, only its hash is kept."""
    from serving.db import open_engine
    from serving.keys import KeyStore, key_id_of

    try:
        key = KeyStore(open_engine()).create(role)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(f"created key {key_id_of(key)} with role {role}; keep it now, it is not shown again:")
    console.print(key, highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain of every decision record; exit 1 at the first broken link."""
    from serving.audit import AuditLog
    from serving.db import open_engine

    try:
        with console.status("verifying the audit log"):
            report = AuditLog(open_engine()).verify()
    except NbaError as exc:
        raise fail(str(exc)) from None
    if not report.ok:
        raise fail(f"audit log broken at record {report.first_broken_seq}: {report.reason} "
                   f"({report.checked:,} records before it are sound)", code=1)  # fmt: skip
    console.print(f"audit log OK: {report.checked:,} records checked, head hash {report.head_hash}")


@consent_app.command("import")
def consent_import(
    data: Annotated[Path, typer.Option("--data", help="Folder holding the source tables.")],
) -> None:
    """Load a world's consent_events into the registry (NBA_DATABASE_URL); re-importing adds nothing."""
    from nba.settings import get_settings
    from serving.consent import ConsentStore
    from serving.db import open_engine

    try:
        url = get_settings().database_url
        with console.status(f"importing consent events from {data}"):
            added = ConsentStore(open_engine(url)).import_world(data)
    except NbaError as exc:
        raise fail(str(exc)) from None
    console.print(f"imported {added:,} new consent events from {data} into {redact(url)}")


def main() -> None:  # pragma: no cover - console script
    app()
