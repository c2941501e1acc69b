"""Benchmark `nba train`: time and peak RSS of training every action on a 200,000-member world.

The reference measured in the same run is building the training frame alone (profiles at
every as-of date and the labels), so the ratio shows what model fitting and MLflow add.

    .venv/bin/python -m benchmarks.training                 # generates the world if missing
    .venv/bin/python -m benchmarks.training --members 50000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import peak_rss_mb, write_result
from benchmarks.features import world


def child(kind: str, data: Path, months: int) -> dict[str, object]:
    from nba.catalogue import default_catalogue
    from training.dataset import build_training_frame, extract_date, plan_split
    from training.pipeline import train_all

    started = time.perf_counter()
    if kind == "frame":
        plan = plan_split(extract_date(data), months=months)
        rows = len(build_training_frame(data, default_catalogue(), plan))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = train_all(data, experiment="bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                               artifact_root=Path(tmp), months=months)  # fmt: skip
            rows = len(result.actions)
    return {"seconds": round(time.perf_counter() - started, 1), "rows": rows, "peak_rss_mb": peak_rss_mb()}


def measure(kind: str, data: Path, months: int) -> dict[str, object]:
    cmd = [sys.executable, "-m", "benchmarks.training", "--child", kind, "--world", str(data),
           "--months", str(months)]  # fmt: skip
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--child", choices=["frame", "train"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.world, args.months)))
        return
    data = world(args.members, args.world)
    frame = measure("frame", data, args.months)
    train = measure("train", data, args.months)
    ratio = float(train["seconds"]) / float(frame["seconds"])  # type: ignore[arg-type]
    rss = train["peak_rss_mb"]["self"]  # type: ignore[index]
    print(f"world: {data} ({args.members:,} members, {args.months} monthly as-of dates)")
    print(f"reference, training frame only: {frame['seconds']} s for {frame['rows']:,} rows")
    print(f"nba train, all 16 actions with MLflow: {train['seconds']} s, peak RSS {rss:,.0f} MB")
    print(f"ratio to the reference: {ratio:.2f}")
    path = write_result("training", {"members": args.members, "months": args.months, "frame": frame,
                                     "train": train, "ratio": round(ratio, 2)})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
