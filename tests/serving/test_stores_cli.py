"""`nba keys create`, `nba audit verify` and `nba consent import` as an operator runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from nba.cli import app
from nba.settings import get_settings
from serving.audit import AuditLog
from serving.db import open_engine
from serving.keys import KeyStore


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """NBA_DATABASE_URL pointing at a fresh SQLite file."""
    url = f"sqlite:///{tmp_path / 'nba.db'}"
    monkeypatch.setenv("NBA_DATABASE_URL", url)
    get_settings(fresh=True)
    yield url
    monkeypatch.undo()
    get_settings(fresh=True)


def test_keys_create_prints_the_key_once(database: str) -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--role", "compliance"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("nba_") and key.split("_")[1] in result.output.splitlines()[0]
    assert KeyStore(open_engine(database)).role_of(key) == "compliance"


def test_keys_create_names_a_bad_role(database: str) -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--role", "root"])
    assert result.exit_code == 2
    assert "role must be one of" in result.output and "'root'" in result.output


def test_audit_verify_reports_ok_then_the_broken_record(database: str) -> None:
    engine = open_engine(database)
    log = AuditLog(engine)
    for i in range(3):
        log.append({"request_id": f"r{i}", "member_id": i})
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit log OK: 3 records checked" in result.output
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.execute(sa.text("UPDATE audit_log SET member_id = 9 WHERE seq = 2"))
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "broken at record 2" in result.output


def test_consent_import_twice(database: str, small_world: Path) -> None:
    rows = pq.read_metadata(small_world / "consent_events.parquet").num_rows
    first = CliRunner().invoke(app, ["consent", "import", "--data", str(small_world)])
    assert first.exit_code == 0, first.output
    assert f"imported {rows:,} new consent events" in first.output
    again = CliRunner().invoke(app, ["consent", "import", "--data", str(small_world)])
    assert "imported 0 new consent events" in again.output


def test_consent_import_names_a_missing_folder(database: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["consent", "import", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "--data must be a folder" in result.output
