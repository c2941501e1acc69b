"""`nba report ...`: files written atomically, summaries printed, errors that name what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba.settings import get_settings
from reports.cli import report_app
from serving.audit import AuditLog
from serving.db import open_engine
from tests.reports.conftest import ReportWorld

runner = CliRunner()


@pytest.fixture
def env(report_world: ReportWorld, planted_copy: str) -> Iterator[dict[str, str]]:
    """The report world's stores (a copy: the decision command logs its read)."""
    yield {"NBA_DATABASE_URL": planted_copy, "NBA_MLFLOW_TRACKING_URI": report_world.served.tracking_uri}
    get_settings(fresh=True)  # forget these settings once the environment is restored


def test_compliance_command_writes_the_page_and_prints_the_proofs(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "pages" / "compliance.html"
    result = runner.invoke(report_app, ["compliance", "--out", str(out), "--replay-sample", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["compliance.html"], "no temporary file left"
    for key in "1234":
        assert f"proof {key}: 0 " in result.output
    assert "model cards: 16 of 16 read" in result.output


def test_decision_command_logs_the_read(
    env: dict[str, str], report_world: ReportWorld, tmp_path: Path
) -> None:
    request_id = report_world.made.request_ids[1]
    out = tmp_path / "decision.html"
    result = runner.invoke(report_app, ["decision", request_id, "--out", str(out), "--no-replay"], env=env)
    assert result.exit_code == 0, result.output
    assert request_id in out.read_text()
    engine = open_engine(env["NBA_DATABASE_URL"])
    reads = AuditLog(engine).reads(request_id)
    engine.dispose()
    assert len(reads) == 1 and reads[0].caller.startswith("cli:") and reads[0].role == "compliance"


def test_decision_command_refuses_an_unknown_request_id(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "decision.html"
    result = runner.invoke(report_app, ["decision", "nope", "--out", str(out)], env=env)
    assert result.exit_code == 2 and "request_id 'nope' has no decision record" in result.output
    assert not out.exists()


def test_out_must_be_an_html_file(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(
        report_app, ["experiments", "--no-offline", "--out", str(tmp_path / "x.txt")], env=env
    )
    assert result.exit_code == 2 and "--out must name an .html file" in result.output


def test_experiments_command_compares_runs_and_variants(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "experiments.html"
    result = runner.invoke(report_app, ["experiments", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "offline runs test/" in result.output and "online: " in result.output
    unknown = runner.invoke(report_app, ["experiments", "--runs", "abc,def", "--out", str(out)], env=env)
    assert unknown.exit_code == 2 and "unknown run id 'abc'" in unknown.output


def test_report_is_a_sub_command_of_nba() -> None:
    from nba.cli import app

    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    assert all(command in result.output for command in ("experiments", "compliance", "decision"))
