"""Helpers shared by the benchmark scripts: peak memory, JSON results, the machine."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child, in MB."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(me, 1), "largest_child": round(kids, 1)}


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), **result}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
