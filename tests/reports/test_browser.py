"""The pages in headless Chromium with no network: charts render, numbers match the database.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package; skipped with the
reason otherwise (and failed in CI, where NBA_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reports.compliance import compliance_report
from reports.decision import decision_page
from reports.experiments import experiment_report
from reports.fairness import age_band
from reports.html import write_atomic
from reports.proofs import offers_after_refusal_query
from reports.sources import Sources
from reports.sql import Sql, run
from serving.models import feature_vector
from tests.reports.conftest import ReportWorld

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
DRAWN = ".js-plotly-plot .main-svg"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


def offline_page(browser: Any, allowed: str = "file://", **context: Any) -> tuple[Any, list[str]]:
    """A page that may load only URLs starting with ``allowed``; every other request is aborted and kept."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, **context)
    blocked: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith((allowed, "data:", "blob:", "about:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    return page, blocked


def open_file(browser: Any, path: Path) -> tuple[Any, list[str]]:
    page, blocked = offline_page(browser)
    page.goto(path.as_uri())
    page.wait_for_selector(DRAWN, timeout=20_000)
    return page, blocked


def test_compliance_page_renders_and_shows_the_databases_numbers(
    browser: Any, sources: Sources, tmp_path: Path
) -> None:
    path = write_atomic(tmp_path / "compliance.html", compliance_report(sources, replay_sample=3).html)
    page, blocked = open_file(browser, path)
    assert page.locator(".js-plotly-plot").count() == 3 and page.locator(".heatmaplayer").count() == 3
    violations = run(sources.engine, offers_after_refusal_query(Sql.of(sources.engine)))
    assert page.locator("#proof-1-count").inner_text() == str(len(violations))
    expected = selection_rate(sources, "sex", "F", "dental_checkup")
    cell = page.locator('#fairness-sex tr[data-action="dental_checkup"] td[data-group="F"]')
    assert float(cell.get_attribute("data-rate")) == pytest.approx(expected, abs=1e-6)
    assert cell.inner_text() == f"{100 * expected:.1f} %"
    assert blocked == []
    page.close()


def selection_rate(sources: Sources, attribute: str, group: str, action: str) -> float:
    """The share of ``group``'s decided members to whom ``action`` was returned, straight from the DB."""
    with sources.engine.connect() as conn:
        records = [
            json.loads(r) for r in pd.read_sql(sa.text("select record from audit_log"), conn)["record"]
        ]
    answered = [r for r in records if r.get("status") == 200]
    members = sorted({r["member_id"] for r in answered})
    assert sources.profiles is not None
    profiles = sources.profiles.get_many(members)

    def group_of(values: dict[str, Any]) -> str | None:
        sex = "F" if values["sex_female"] else "M"
        return {"sex": sex, "age_band": age_band(values["age"]), "region": values["region"]}[attribute]

    in_group = [m for m in members if group_of(profiles[m].values) == group]
    chosen = {r["member_id"] for r in answered if action in r["returned"]}
    return sum(m in chosen for m in in_group) / len(in_group)


def test_experiments_page_renders_and_counts_exposures(
    browser: Any, sources: Sources, tmp_path: Path
) -> None:
    report = experiment_report(sources, runs=[], experiments=[], reliability=False)
    path = write_atomic(tmp_path / "experiments.html", report.html)
    page, blocked = open_file(browser, path)
    assert page.locator(".js-plotly-plot").count() >= 4  # AUC, lift, reliability, SHAP, rates (and uplift)
    with sources.engine.connect() as conn:
        records = [
            json.loads(r) for r in pd.read_sql(sa.text("select record from audit_log"), conn)["record"]
        ]
    for variant in {r["variant"] for r in records if r.get("status") == 200}:
        exposures = sum(
            len(r["returned"]) for r in records if r.get("status") == 200 and r["variant"] == variant
        )
        shown = page.locator(f'#online-exposures tr[data-variant="{variant}"] td[data-exposures]')
        assert shown.get_attribute("data-exposures") == str(exposures)
        assert shown.inner_text() == f"{exposures:,}"
    assert page.locator("#verdict").inner_text() == report.online.sentence  # type: ignore[union-attr]
    assert blocked == []
    page.close()


def test_decision_page_draws_every_returned_actions_contributions(
    browser: Any, sources: Sources, report_world: ReportWorld, tmp_path: Path
) -> None:
    assert report_world.made.offer_request is not None
    request_id = report_world.made.offer_request[0]
    path = write_atomic(tmp_path / "decision.html", decision_page(sources, request_id))
    page, blocked = open_file(browser, path)
    record = json.loads(
        sources.engine.connect()
        .execute(sa.text("select record from audit_log where request_id = :r"), {"r": request_id})
        .scalar_one()
    )
    assert page.locator(".js-plotly-plot").count() == len(record["returned"])
    bars = page.locator(".js-plotly-plot .barlayer .point").count()
    # the record keeps features and model versions; count the non-zero contributions with
    # LightGBM's own TreeSHAP (Booster.predict), not the page's code path
    models = sources.model_set()
    vector = feature_vector(record["features"])
    nonzero = 0
    for candidate in record["candidates"]:
        if candidate["action_id"] in record["returned"]:
            model = models.version(candidate["action_id"], candidate["model"]["version"])
            row = model.booster.predict(
                vector[model.columns][None, :], pred_contrib=True, num_iteration=model.best_iteration,
                num_threads=1,
            )[0]  # fmt: skip
            nonzero += int(np.count_nonzero(row[:-1]))
    assert bars == nonzero > 0
    assert page.locator("#request-id").inner_text() == request_id
    assert blocked == []
    page.close()


# -- the pages served over HTTP, under their Content-Security-Policy ------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served_pages(report_world: ReportWorld) -> Iterator[str]:
    """The pages behind the service's auth middleware on a real HTTP server (a thread)."""
    import uvicorn
    from fastapi import FastAPI

    from nba.settings import Settings
    from serving import app as service_app
    from serving.auth import AuthMiddleware
    from serving.pages import router
    from tests.reports.decisions import service

    pages = FastAPI()
    pages.include_router(router)
    settings = Settings(
        database_url=report_world.database_url, mlflow_tracking_uri=report_world.served.tracking_uri
    )
    assert report_world.made.offer_request is not None
    roles = {
        "/reports/compliance": frozenset({"compliance"}),
        "/reports/experiments": frozenset({"compliance", "admin"}),
        f"/reports/decision/{report_world.made.offer_request[0]}": frozenset({"compliance"}),
    }
    previous = {path: service_app.ROUTE_ROLES.get(path) for path in roles}
    service_app.ROUTE_ROLES.update(roles)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(AuthMiddleware(pages), host="127.0.0.1", port=port, log_level="warning")
    )
    with service(settings):
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            for path, value in previous.items():
                if value is None:
                    service_app.ROUTE_ROLES.pop(path, None)
                else:
                    service_app.ROUTE_ROLES[path] = value


def served_page(browser: Any, base: str, path: str, key: str) -> tuple[Any, list[str], list[str]]:
    """``path`` opened with ``key``: the page, requests blocked, console errors (CSP violations)."""
    page, blocked = offline_page(browser, allowed=base, extra_http_headers={"Authorization": f"Bearer {key}"})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    response = page.goto(f"{base}{path}")
    assert response is not None and response.status == 200, path
    assert "connect-src 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector(DRAWN, timeout=30_000)
    return page, blocked, problems


def test_served_pages_render_under_their_security_policy(
    browser: Any, served_pages: str, report_world: ReportWorld, sources: Sources
) -> None:
    key = report_world.served.keys["compliance"]
    page, blocked, problems = served_page(browser, served_pages, "/reports/compliance?replay_sample=2", key)
    violations = run(sources.engine, offers_after_refusal_query(Sql.of(sources.engine)))
    assert page.locator("#proof-1-count").inner_text() == str(len(violations))
    page.close()
    assert report_world.made.offer_request is not None
    for path in (
        "/reports/experiments?offline=false",
        f"/reports/decision/{report_world.made.offer_request[0]}",
    ):
        page, more_blocked, more_problems = served_page(browser, served_pages, path, key)
        assert page.locator(".js-plotly-plot").count() >= 1
        blocked += more_blocked
        problems += more_problems
        page.close()
    assert problems == [] and blocked == []
