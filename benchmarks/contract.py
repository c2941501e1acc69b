"""Benchmark `nba validate` on a large world, and pandera on record batches as the reference.

The world is a small generated one tiled with shifted identifiers until it has
``--members`` members (about 63 claim lines each at 24 months), so it is valid
and as large as asked in a few minutes. Measured in the same run:

- the reference: the claims column checks by pandera (pandas backend) on Parquet
  record batches, over the first ``--reference-rows`` claim lines;
- the same checks compiled to one DuckDB scan (what ``nba validate`` runs) over all
  claim lines;
- ``validate_world`` on the whole world: every rule, all six tables.

    .venv/bin/python -m benchmarks.contract                    # 1,000,000 members
    .venv/bin/python -m benchmarks.contract --members 100000
    .venv/bin/python -m benchmarks.contract --world DIR         # an existing world
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandera.errors
import pyarrow.parquet as pq

from benchmarks.common import peak_rss_mb, write_result
from features.contract import pandera_schema, validate_world
from features.contract.engine import connect, scan_table
from features.contract.sources import Source, create_views, locate, register
from features.tables import TABLES

SEED_MEMBERS = 2000
ID_COLUMNS = ("member_id", "beneficiary_id", "claim_id", "holding_id", "event_id", "interaction_id")


def seed_world(out: Path) -> Path:
    from features.synthetic import WorldConfig, generate_world

    generate_world(WorldConfig(members=SEED_MEMBERS, months=24, seed=1, workers=1), out)
    return out


def tile_world(seed: Path, out: Path, copies: int) -> dict[str, int]:
    """Write ``copies`` copies of every table of ``seed``, identifiers shifted per copy."""
    out.mkdir(parents=True)
    shutil.copy(seed / "extract.json", out / "extract.json")
    con = duckdb.connect()
    offsets = {c: _max_id(con, seed, c) + 1 for c in ID_COLUMNS}
    rows = {}
    for name, table in TABLES.items():
        columns = ", ".join(
            f"{c} + k * {offsets[c]} AS {c}" if c in ID_COLUMNS else c for c in table.column_names
        )
        con.execute(
            f"COPY (SELECT {columns} FROM read_parquet('{seed / name}.parquet'), "
            f"range({copies}) AS r(k)) TO '{out / name}.parquet' "
            "(FORMAT parquet, ROW_GROUP_SIZE 1000000)"
        )
        rows[name] = pq.ParquetFile(out / f"{name}.parquet").metadata.num_rows
    return rows


def _max_id(con: duckdb.DuckDBPyConnection, seed: Path, column: str) -> int:
    for name, table in TABLES.items():
        if column in table.key:
            row = con.execute(f"SELECT max({column}) FROM '{seed / name}.parquet'").fetchone()
            return int(row[0]) if row else 0
    raise KeyError(column)


def pandera_on_batches(path: Path, max_rows: int, batch_rows: int = 500_000) -> dict[str, Any]:
    """The reference: claims column checks by pandera on pandas record batches."""
    schema = pandera_schema(TABLES["claims"])
    started, rows, failures = time.perf_counter(), 0, 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        try:
            schema.validate(batch.to_pandas(), lazy=True)
        except pandera.errors.SchemaErrors as exc:
            failures += len(exc.failure_cases)
        rows += batch.num_rows
        if rows >= max_rows:
            break
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds)}


def duckdb_column_scan(world: Path, use_statistics: bool) -> dict[str, Any]:
    """The claims column checks compiled to SQL, in one DuckDB scan, as ``nba validate`` runs them.

    With Parquet statistics DuckDB answers most checks of a clean file from the
    metadata; without them every value is evaluated, as when a file has violations.
    """
    from features.contract.schemas import column_rules

    table = TABLES["claims"]
    source = locate(world, table)
    assert isinstance(source, Source)
    with connect(None) as con:
        if not use_statistics:
            con.execute("SET disabled_optimizers = 'statistics_propagation'")
        stored = register(con, source)
        assert isinstance(stored, dict)
        create_views(con, table, stored)
        started = time.perf_counter()
        scanned = scan_table(con, source, list(stored), column_rules(table, stored), None)
        seconds = time.perf_counter() - started
    assert isinstance(scanned, tuple), scanned
    rows = scanned[0]
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds)}


def whole_validation(world: Path) -> dict[str, Any]:
    """``validate_world`` in a fresh process, so the peak memory is its own."""
    command = [sys.executable, "-m", "benchmarks.contract", "--validate-only", str(world)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def validate_only(world: Path) -> None:
    started = time.perf_counter()
    report = validate_world(world)
    seconds = time.perf_counter() - started
    result = {
        "seconds": round(seconds, 1),
        "rows": sum(report.rows.values()),
        "violations": len(report.violations),
        "summary": report.summary_line(),
        "peak_rss_mb": peak_rss_mb()["self"],
    }
    print(json.dumps(result))


def measure(world: Path, reference_rows: int) -> dict[str, Any]:
    reference = pandera_on_batches(world / "claims.parquet", reference_rows)
    print(f"pandera on record batches (reference): {reference}")
    scan = duckdb_column_scan(world, use_statistics=False)
    print(f"DuckDB column scan, every value evaluated: {scan}")
    with_statistics = duckdb_column_scan(world, use_statistics=True)
    print(f"DuckDB column scan, Parquet statistics used (as nba validate runs): {with_statistics}")
    speedup = scan["rows_per_second"] / reference["rows_per_second"]
    print(f"DuckDB evaluating every value is {speedup:.1f} times faster than pandera on batches")
    whole = whole_validation(world)
    print(f"validate_world: {whole}")
    return {
        "load_average_at_start": os.getloadavg()[0],
        "reference_pandera_batches": reference,
        "duckdb_column_scan": scan,
        "duckdb_column_scan_with_statistics": with_statistics,
        "ratio_duckdb_to_pandera": round(speedup, 2),
        "validate_world": whole,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=5_000_000)
    parser.add_argument("--world", type=Path, help="Measure this world instead of building one.")
    parser.add_argument("--validate-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validate_only:
        validate_only(args.validate_only)
        return
    if args.world:
        print(f"wrote {write_result('contract', measure(args.world, args.reference_rows))}")
        return
    scratch = Path(tempfile.mkdtemp(prefix="nba-bench-contract-"))
    try:
        seed = seed_world(scratch / "seed")
        started = time.perf_counter()
        rows = tile_world(seed, scratch / "world", max(1, args.members // SEED_MEMBERS))
        print(f"world: {sum(rows.values()):,} rows in {time.perf_counter() - started:.0f} s: {rows}")
        result = {
            "members": args.members,
            "table_rows": rows,
            **measure(scratch / "world", args.reference_rows),
        }
        print(f"wrote {write_result('contract', result)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
