"""`nba features build` and `nba features publish` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.registry import feature_set_version
from features.store import OnlineStore
from nba.cli import app


def test_build_writes_profiles(small_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "profiles.parquet"
    result = CliRunner().invoke(
        app, ["features", "build", "--data", str(small_world), "--as-of", "2025-06-01", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pq.read_metadata(out).num_rows > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2025-02-30"], "--as-of must be a date"),
        (["--engine", "pandas"], "--engine must be one of"),
    ],
)
def test_build_refuses_bad_options(small_world: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "p.parquet"
    base = ["features", "build", "--data", str(small_world), "--as-of", "2025-06-01", "--out", str(out)]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_build_names_a_missing_table(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    result = CliRunner().invoke(
        app,
        ["features", "build", "--data", str(tmp_path / "w"), "--as-of", "2025-06-01", "--out", "x.parquet"],
    )
    assert result.exit_code == 2
    assert "members" in result.output and "expected" in result.output


def test_publish_fills_the_online_store(
    small_world: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBA_DATABASE_URL", store_url)
    from nba.settings import get_settings

    get_settings(fresh=True)
    try:
        result = CliRunner().invoke(
            app, ["features", "publish", "--data", str(small_world), "--as-of", "2025-06-01"]
        )
    finally:
        monkeypatch.undo()
        get_settings(fresh=True)
    assert result.exit_code == 0, result.output
    store = OnlineStore.from_url(store_url)
    try:
        load = store.current()
        assert load is not None and str(load.as_of) == "2025-06-01"
        assert load.feature_set_version == feature_set_version()
        profile = store.get(
            int(pq.read_table(small_world / "members.parquet").column("member_id")[0].as_py())
        )
        assert profile is not None and "months_since_dental" in profile.values
    finally:
        store.close()
