"""`nba features publish`: profiles as of a date into the online store, in one atomic load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa

from features.build import build_profiles
from features.registry import feature_set_version
from features.store import LoadInfo, OnlineStore

PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def profiles_frame(table: pa.Table) -> pd.DataFrame:
    """Profiles as pandas with nullable ints and bools, so empty values stay empty."""
    return table.drop(["as_of"]).to_pandas(types_mapper=PANDAS_TYPES.get)


def publish_profiles(
    data: Path,
    as_of: dt.date,
    url: str | None = None,
    engine: str = "duckdb",
    on_progress: Callable[[int], None] | None = None,
) -> LoadInfo:
    table = build_profiles(data, as_of, engine=engine)
    store = OnlineStore.from_url(url)
    try:
        return store.publish(profiles_frame(table), as_of, feature_set_version(), on_progress=on_progress)
    finally:
        store.close()
