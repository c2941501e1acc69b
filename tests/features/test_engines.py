"""One definition, two engines: DuckDB and Spark give identical profiles."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from features.build import build_profiles, write_profiles

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def java() -> None:
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 on PATH (apt-get install openjdk-17-jre-headless)")


def test_duckdb_and_spark_write_the_same_file(java: None, small_world: Path, tmp_path: Path) -> None:
    as_of = dt.date(2025, 9, 1)
    duck = build_profiles(small_world, as_of, engine="duckdb")
    spark = build_profiles(small_world, as_of, engine="spark")
    assert spark.num_rows > 1000
    assert duck.equals(spark)
    write_profiles(duck, tmp_path / "duck.parquet")
    write_profiles(spark, tmp_path / "spark.parquet")
    assert (tmp_path / "duck.parquet").read_bytes() == (tmp_path / "spark.parquet").read_bytes()
