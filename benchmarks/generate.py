"""Benchmark `nba generate`: time, rows written and peak RSS for 100,000 and 1,000,000 members.

Goal (issue 2): 1,000,000 members x 36 months in 15 minutes or less, peak RSS 6 GB or less,
on a 2-core machine. The reference measured in the same run is the I/O floor: reading back
the tables just written and writing them again as Parquet (no simulation at all).

    .venv/bin/python -m benchmarks.generate                # 100,000 and 1,000,000 members
    .venv/bin/python -m benchmarks.generate --members 100000
    .venv/bin/python -m benchmarks.generate --keep     # keep the worlds for benchmarks.features
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.common import peak_rss_mb, write_result

GOAL_SECONDS = {1_000_000: 15 * 60}
GOAL_RSS_MB = 6 * 1024


def one_run(members: int, months: int, out: Path) -> dict[str, object]:
    """Runs in a fresh process so its peak RSS is its own."""
    from features.synthetic import WorldConfig, generate_world

    started = time.perf_counter()
    summary = generate_world(WorldConfig(members=members, months=months, seed=1), out)
    seconds = time.perf_counter() - started
    rss = peak_rss_mb()
    io_started = time.perf_counter()
    again = out.parent / "rewrite"
    again.mkdir()
    for path in out.rglob("*.parquet"):
        source = pq.ParquetFile(path)
        with pq.ParquetWriter(again / path.name, source.schema_arrow) as writer:
            for i in range(source.num_row_groups):
                writer.write_table(source.read_row_group(i))
    io_seconds = time.perf_counter() - io_started
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    return {
        "members": members,
        "months": months,
        "seconds": round(seconds, 1),
        "rows": summary.rows,
        "rows_total": sum(summary.rows.values()),
        "parquet_mb": round(size / 2**20, 1),
        "peak_rss_mb": rss,
        "peak_rss_mb_total": round(rss["self"] + 2 * rss["largest_child"], 1),
        "reference_io_seconds": round(io_seconds, 1),
        "ratio_to_io_floor": round(seconds / io_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument(
        "--keep", action="store_true", help="keep each world under benchmarks/.worlds/N for other benchmarks"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.months, args.out)))
        return
    results = []
    for members in args.members:
        tmp = Path(tempfile.mkdtemp(prefix="nba-bench-"))
        try:
            cmd = [sys.executable, "-m", "benchmarks.generate", "--child", str(members),
                   "--months", str(args.months), "--out", str(tmp / "world")]  # fmt: skip
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if args.keep:
                kept = Path(__file__).parent / ".worlds" / str(members)
                shutil.rmtree(kept, ignore_errors=True)
                kept.parent.mkdir(exist_ok=True)
                shutil.move(tmp / "world", kept)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        goal = GOAL_SECONDS.get(members)
        if goal:
            result["goal_seconds"] = goal
            result["ratio_to_goal_seconds"] = round(result["seconds"] / goal, 2)
        result["goal_rss_mb"] = GOAL_RSS_MB
        result["ratio_to_goal_rss"] = round(result["peak_rss_mb_total"] / GOAL_RSS_MB, 2)
        results.append(result)
        print(
            f"{members:>9,} members x {args.months} months: {result['seconds']:>7.1f} s, "
            f"{result['rows_total']:>12,} rows, {result['parquet_mb']:,.0f} MB Parquet, "
            f"peak RSS {result['peak_rss_mb_total']:,.0f} MB (parent {result['peak_rss_mb']['self']:,.0f}"
            f" + 2 workers x {result['peak_rss_mb']['largest_child']:,.0f}); "
            f"I/O floor {result['reference_io_seconds']:.1f} s, ratio {result['ratio_to_io_floor']:.1f}x"
            + (f"; goal {goal} s, ratio {result['ratio_to_goal_seconds']:.2f}" if goal else ""),
            flush=True,
        )
    path = write_result("generate", {"runs": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
