"""`nba features build`: run the profile expression on an engine and write one Parquet file."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features import moments as mo
from features import profiles as pr
from features.moments import Sources
from features.registry import (
    CARE_LABELS,
    CARE_WINDOWS,
    FEATURES,
    MOMENTS,
    PREVENTION,
    PRODUCT_LABELS,
    feature_set_version,
    profile_schema,
)
from nba import vocab
from nba.errors import ConfigError, DataError

ENGINES = ("duckdb", "spark")
SOURCE_TABLES = ("members", "beneficiaries", "claims", "holdings", "interactions")


@dataclass(frozen=True)
class Plan:
    """How an engine runs the profile expression; the features are the same expressions on every engine."""

    care_by_join: bool
    """Spread the care columns with a join per category (DuckDB: cheaper than a hundred conditional
    sums) rather than one aggregation (Spark: every join adds stages)."""
    sort_in_engine: bool
    """Sort the profiles in the engine (DuckDB sorts in parallel) rather than the Arrow result
    (cheaper than Spark's global sort of wide rows)."""
    settings: tuple[str, ...] = ()
    """Statements run on the connection before the build: engine settings."""


PLANS = {
    "duckdb": Plan(
        care_by_join=True,
        sort_in_engine=True,
        # each join of the chain builds its hash table on the part, never on the accumulated
        # side, which DuckDB would do where it estimates that side the smaller: a hash table of
        # ever wider rows at each join (measured: 70% more time for the whole build)
        settings=("SET disabled_optimizers = 'build_side_probe_side'",),
    ),
    "spark": Plan(care_by_join=False, sort_in_engine=False),
}


@contextmanager
def connect(engine: str) -> Iterator[ibis.BaseBackend]:
    """An Ibis backend: in-process DuckDB, or a local Spark session (Java 17)."""
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        try:
            yield con
        finally:
            con.disconnect()
        return
    if engine != "spark":
        raise ConfigError(f"--engine must be one of {list(ENGINES)}; got {engine!r}")
    yield ibis.pyspark.connect(spark_session())


def spark_session():
    """A local Spark session in UTC; reused within one process."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers use this venv
    session = (
        SparkSession.builder.master(os.environ.get("NBA_SPARK_MASTER", "local[2]"))
        .appName("nba-features")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", os.environ.get("NBA_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # a command's output is its own summary line, not Spark's stage bars and warnings
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def table_path(data: Path, name: str) -> str:
    """``DIR/name.parquet`` or a folder ``DIR/name/`` of Parquet parts."""
    file, folder = data / f"{name}.parquet", data / name
    if file.is_file():
        return str(file)
    if folder.is_dir() and any(folder.glob("*.parquet")):
        return str(folder / "*.parquet")
    raise DataError(
        f"table {name!r}: expected {file} or a folder {folder}/ of Parquet files; found neither "
        "(run `nba validate` on the folder first)"
    )


def load_sources(con: ibis.BaseBackend, data: Path) -> Sources:
    if not Path(data).is_dir():
        raise ConfigError(f"--data must be a folder holding the source tables; got {str(data)!r}")
    tables = {name: con.read_parquet(table_path(Path(data), name), table_name=name) for name in SOURCE_TABLES}
    return Sources(**tables)


def history_start(src: Sources, as_of: dt.date) -> dt.date | None:
    """First care date the insurer knew of before ``as_of`` (where the claims history starts)."""
    return mo.paid_before(src.claims, as_of).care_date.min().to_pyarrow().as_py()


def profile_expression(
    src: Sources,
    as_of: dt.date,
    start: dt.date | None,
    care_by_category: ir.Table,
    plan: Plan,
) -> ir.Table:
    """All features of every active member, in registry order.

    ``care_by_category`` is ``profiles.care_by_category(src, as_of)``, which the caller
    materialises: the care columns read it once per category, or once in all.
    """
    t = pr.base_features(src, as_of)
    parts = (
        pr.engagement(src, as_of),
        pr.household(src, as_of),
        *pr.care(care_by_category, by_join=plan.care_by_join),
        pr.claim_features(src, as_of, start),
        pr.dental_visits(src, as_of),
        pr.holdings(src, as_of),
        pr.moment_dates(src, as_of, start),
    )
    # one flat chain of left joins; each part's key gets its own name to avoid collisions
    for i, part in enumerate(parts):
        keyed = part.rename({f"_key{i}": "member_id"})
        t = t.left_join(keyed, t.member_id == keyed[f"_key{i}"])
    out = t.select(member_id=t.member_id, as_of=ibis.date(as_of), **_finish(t, as_of))
    return out.order_by("member_id") if plan.sort_in_engine else out


def _finish(t: ir.Table, as_of: dt.date) -> dict[str, ir.Value]:
    """Fill empty aggregates and turn dates into 'months since'."""
    since = lambda col: ibis.ifelse(col.notnull(), pr.months_between(as_of, col), ibis.null()).cast(  # noqa: E731
        "int64"
    )
    out: dict[str, ir.Value] = {}
    for name in ("age", "sex_female", "vulnerable", "region", "married", "widowed", "separated",
                 "formula_level", "collective_contract", "tenure_months", "years_to_retirement_age",
                 "online_account", "months_since_online_account", "youngest_child_age",
                 "eldest_child_age"):  # fmt: skip
        out[name] = t[name]
    for name in ("n_adults", "n_children", "hospital_stays_12m", "household_chronic",
                 "dental_visits_24m", "app_exposures_3m", "exposures_12m", "dismissed_12m"):  # fmt: skip
        out[name] = t[name].fill_null(0).cast("int64")
    out["has_spouse"] = t.has_spouse.fill_null(False)
    out["chronic_treatment"] = t.chronic_treatment.fill_null(False)
    out["months_since_last_contact"] = since(t.last_contact)
    out.update(_care_columns(t, since))
    out.update(_contract_columns(t, since))
    for name, *_rest in PREVENTION:
        out[f"months_since_{name}"] = since(t[f"last_{name}"])
    out["flu_vaccinated_this_season"] = t.last_flu_vaccine.fill_null(dt.date(1900, 1, 1)) >= _season_start(
        as_of
    )
    out["month_of_year"] = ibis.literal(as_of.month).cast("int64")
    out.update(_moment_columns(t, as_of, since))
    for a in vocab.ACTION_IDS:
        for kind in ("exposures", "responses"):
            out[f"{kind}_{a}_24m"] = t[f"{kind}_{a}_24m"].fill_null(0).cast("int64")
    missing = [f.name for f in FEATURES if f.name not in out]
    if missing:  # pragma: no cover - guarded by the registry test
        raise AssertionError(f"profile expression lacks registry features {missing}")
    return {f.name: out[f.name] for f in FEATURES}


def _care_columns(t: ir.Table, since) -> dict[str, ir.Value]:
    out: dict[str, ir.Value] = {}
    for cat in CARE_LABELS:
        for w in CARE_WINDOWS:
            out[f"{cat}_count_{w}m"] = t[f"{cat}_count_{w}m"].fill_null(0).cast("int64")
            for kind in ("spend", "out_of_pocket"):
                out[f"{cat}_{kind}_{w}m"] = t[f"{cat}_{kind}_{w}m"].fill_null(0).cast("float64") / 100.0
        out[f"months_since_{cat}_claim"] = since(t[f"last_claim_{cat}"])
    return out


def _contract_columns(t: ir.Table, since) -> dict[str, ir.Value]:
    out: dict[str, ir.Value] = {f"status_{s}": t[f"status_{s}"] for s in pr.STATUS_LABELS}
    for p in PRODUCT_LABELS:
        out[f"holds_{p}"] = t[f"start_{p}"].notnull()
        out[f"months_since_{p}_start"] = since(t[f"start_{p}"])
    return out


def _moment_columns(t: ir.Table, as_of: dt.date, since) -> dict[str, ir.Value]:
    out: dict[str, ir.Value] = {}
    for name, *_rest in MOMENTS:
        if name == "retirement_within_3y":
            start = (t.birth_date + ibis.interval(years=mo.RETIREMENT_LEGAL_AGE - 3)).cast("date")
            near = (t.status != "retired") & (t.age >= mo.RETIREMENT_LEGAL_AGE - 3)
            out[f"months_since_{name}"] = ibis.ifelse(near, since(start), ibis.null()).cast("int64")
        elif name == "age_step":
            out[f"months_since_{name}"] = since(mo.age_step_date(t.birth_date, t.age))
        else:
            out[f"months_since_{name}"] = since(t[f"moment_{name}"])
    return out


def _season_start(as_of: dt.date) -> dt.date:
    """Flu seasons start on 1 September."""
    year = as_of.year if as_of.month >= 9 else as_of.year - 1
    return dt.date(year, 9, 1)


def build_profiles(data: Path, as_of: dt.date, engine: str = "duckdb") -> pa.Table:
    """Profiles of every member active on ``as_of``, sorted by member, as an Arrow table (registry schema)."""
    with connect(engine) as con:
        plan = PLANS[engine]
        for statement in plan.settings:
            con.raw_sql(statement)
        src = load_sources(con, Path(data))
        # materialised (a temporary table, a cached DataFrame) rather than recomputed per category
        with pr.care_by_category(src, as_of).cache() as by_category:
            expr = profile_expression(src, as_of, history_start(src, as_of), by_category, plan)
            table = expr.to_pyarrow()
    if not plan.sort_in_engine:
        table = table.take(pc.sort_indices(table, sort_keys=[("member_id", "ascending")]))
    schema = profile_schema()
    table = table.select(schema.names).cast(schema)
    metadata = {b"feature_set_version": feature_set_version().encode(), b"as_of": as_of.isoformat().encode()}
    return table.replace_schema_metadata(metadata)


def write_profiles(table: pa.Table, out: Path) -> None:
    """Write atomically: a temporary file renamed into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, row_group_size=250_000)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
