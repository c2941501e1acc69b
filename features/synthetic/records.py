"""Row buffers that collect simulated facts and turn them into Arrow tables."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

EPOCH = np.datetime64("1970-01-01", "D")
NO_DAY = np.int32(-(2**31) + 1)
"""Sentinel for 'no date' in int32 day arrays (days since 1970-01-01)."""


class Rows:
    """Append column arrays batch by batch; build one Arrow table at the end."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = defaultdict(list)
        self._count = 0

    def add(self, **columns: np.ndarray | object) -> None:
        sizes = {np.size(v) for v in columns.values() if isinstance(v, np.ndarray)}
        if not sizes:
            return
        (n,) = sizes
        if n == 0:
            return
        for name, value in columns.items():
            arr = value if isinstance(value, np.ndarray) else np.full(n, value)
            self._parts[name].append(arr)
        self._count += n

    def __len__(self) -> int:
        return self._count

    def column(self, name: str) -> np.ndarray:
        parts = self._parts.get(name)
        return np.concatenate(parts) if parts else np.empty(0)

    def columns(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self._parts.items()}


def day_array(days: np.ndarray) -> pa.Array:
    """int day numbers (NO_DAY = null) -> Arrow date32."""
    days = np.asarray(days, dtype=np.int64)
    mask = days == NO_DAY
    return pa.array(days.astype(np.int32), type=pa.int32(), mask=mask).cast(pa.date32())


def timestamp_array(micros: np.ndarray) -> pa.Array:
    """int microseconds since epoch (negative sentinel = null) -> Arrow timestamp UTC."""
    micros = np.asarray(micros, dtype=np.int64)
    mask = micros < 0
    return pa.array(micros, type=pa.int64(), mask=mask).cast(pa.timestamp("us", tz="UTC"))


def rank_within(groups: np.ndarray) -> np.ndarray:
    """1-based position of each row within its run of equal, sorted ``groups``."""
    n = groups.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return np.arange(n) - first + 1
