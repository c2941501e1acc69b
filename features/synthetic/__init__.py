"""A synthetic French mutuelle: members, households, claims, holdings, consent and campaigns.

The world stands in for an insurer's extracts (see ``docs/synthetic-world.md``).
It is generated block by block: every block of ``BLOCK_SIZE`` members draws from
its own random stream seeded by ``(seed, block index)``, so the result does not
depend on how many blocks are held in memory at once (``chunk_size``).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nba.errors import ConfigError

BLOCK_SIZE = 1000
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class WorldConfig:
    """What to generate. Validated on creation; errors name the option."""

    members: int = 5000
    months: int = 48
    """Four years: at every as-of date `nba train` learns from (18 monthly dates before the
    label windows' end), the claims show the 30 months of history that screening habits
    are read from (behaviour.HABIT_MONTHS)."""
    seed: int = 0
    extract_date: dt.date = dt.date(2025, 12, 31)
    chunk_size: int = 50_000
    workers: int = 0
    """Processes simulating blocks in parallel; 0 means one per core."""

    MAX_MONTHS: ClassVar[int] = 240

    def __post_init__(self) -> None:
        checks = [
            (self.members >= 1, "--members", "a whole number of at least 1", self.members),
            (1 <= self.months <= self.MAX_MONTHS, "--months",
             f"a whole number from 1 to {self.MAX_MONTHS}", self.months),
            (self.seed >= 0, "--seed", "a whole number of at least 0", self.seed),
            (self.workers >= 0, "--workers", "a whole number of at least 0", self.workers),
            (self.chunk_size >= BLOCK_SIZE and self.chunk_size % BLOCK_SIZE == 0, "--chunk-size",
             f"a positive multiple of {BLOCK_SIZE}", self.chunk_size),
            (dt.date(1990, 1, 1) <= self.extract_date <= dt.date(2100, 1, 1), "--extract-date",
             "a date between 1990-01-01 and 2100-01-01", self.extract_date),
        ]  # fmt: skip
        for ok, option, expected, got in checks:
            if not ok:
                raise ConfigError(f"{option} must be {expected}; got {got!r}")


@dataclass
class GenerationSummary:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def simulate_block(config: WorldConfig, block: int) -> dict[str, pa.Table]:
    """Simulate members ``block * BLOCK_SIZE + 1 ...`` and return their tables."""
    from features.synthetic.assemble import block_tables
    from features.synthetic.simulate import Simulation
    from features.synthetic.state import Calendar

    first = block * BLOCK_SIZE
    n = min(BLOCK_SIZE, config.members - first)
    rng = np.random.default_rng([config.seed, block])
    calendar = Calendar.ending(np.datetime64(config.extract_date, "D"), config.months)
    sim = Simulation(rng, first + 1, n, calendar)
    sim.run()
    return block_tables(sim)


def generate_world(
    config: WorldConfig,
    out: Path,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Write the world to ``out`` atomically: a failure leaves no partial folder behind."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {str(out)!r} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; expected a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    try:
        rows = _write(config, tmp, on_progress)
        _write_manifest(config, tmp, rows)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GenerationSummary(rows=rows, seconds=time.perf_counter() - started)


def _write(config: WorldConfig, tmp: Path, on_progress: Callable[[int], None] | None) -> dict[str, int]:
    (tmp / "ground_truth").mkdir(parents=True)
    writers: dict[str, pq.ParquetWriter] = {}
    rows: dict[str, int] = {}
    blocks = range((config.members + BLOCK_SIZE - 1) // BLOCK_SIZE)
    per_chunk = config.chunk_size // BLOCK_SIZE
    chunks = [blocks[i : i + per_chunk] for i in range(0, len(blocks), per_chunk)]
    try:
        for chunk, results in _simulate_chunks(config, chunks):
            parts: dict[str, list[pa.Table]] = {}
            for block, result in zip(chunk, results, strict=True):
                for name, table in result.items():
                    parts.setdefault(name, []).append(table)
                if on_progress:
                    on_progress(min(BLOCK_SIZE, config.members - block * BLOCK_SIZE))
            for name, tables in parts.items():
                table = pa.concat_tables(tables)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(tmp / f"{name}.parquet", table.schema)
                writers[name].write_table(table, row_group_size=1_000_000)
                rows[name] = rows.get(name, 0) + table.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    return rows


def _simulate_chunks(
    config: WorldConfig, chunks: list[range]
) -> Iterator[tuple[range, Iterable[dict[str, pa.Table]]]]:
    """Yield each chunk's blocks in order. With several workers the next chunk is already being
    simulated while the current one is written, and at most two chunks are held in memory."""
    workers = min(config.workers or os.cpu_count() or 1, sum(len(c) for c in chunks))
    if workers <= 1:
        for chunk in chunks:
            yield chunk, (simulate_block(config, block) for block in chunk)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            ahead = [pool.submit(simulate_block, config, b) for b in chunks[0]] if chunks else []
            for k, chunk in enumerate(chunks):
                current = ahead
                if k + 1 < len(chunks):
                    ahead = [pool.submit(simulate_block, config, b) for b in chunks[k + 1]]
                yield chunk, (future.result() for future in current)
        finally:
            pool.shutdown(cancel_futures=True)


def _write_manifest(config: WorldConfig, tmp: Path, rows: dict[str, int]) -> None:
    manifest = {
        "extract_date": config.extract_date.isoformat(),
        "generator": {
            "version": GENERATOR_VERSION,
            **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(config).items()
               if k != "chunk_size"},
        },
        "rows": rows,
        "ground_truth": "ground_truth/ is for evaluation only: never read it in features, "
        "training or serving.",
    }  # fmt: skip
    (tmp / "extract.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


__all__ = ["BLOCK_SIZE", "GenerationSummary", "WorldConfig", "generate_world", "simulate_block"]
