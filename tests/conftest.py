"""Shared fixtures: small worlds from the project's own generator, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features.synthetic import WorldConfig, generate_world


def make_world(root: Path, members: int, months: int, seed: int) -> Path:
    out = root / f"world-{members}-{months}-{seed}"
    generate_world(WorldConfig(members=members, months=months, seed=seed, workers=1), out)
    return out


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 members over 24 months: enough of every table, fast to build."""
    return make_world(tmp_path_factory.mktemp("worlds"), members=2000, months=24, seed=7)


@pytest.fixture(scope="session")
def world_20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 members over 36 months, the size CALIBRATION checks are stated for."""
    out = tmp_path_factory.mktemp("worlds") / "world-20000"
    generate_world(WorldConfig(members=20_000, months=36, seed=1), out)
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (NBA_REQUIRE_SERVICES=1) a test skipped for a missing service or browser fails."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("NBA_REQUIRE_SERVICES") == "1":
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but NBA_REQUIRE_SERVICES=1 requires it to run: {reason}"
