"""The compliance and decision pages as HTML, and as the service serves them (roles, headers, 404)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from nba.errors import ConfigError
from nba.settings import Settings
from reports.compliance import compliance_report
from reports.decision import decision_page
from reports.html import plotly_js
from reports.sources import NotFoundError, ReportError, Sources
from serving import app as service_app
from serving.audit import AuditLog
from serving.auth import AuthMiddleware
from serving.pages import router
from tests.reports.conftest import ReportWorld
from tests.reports.decisions import service

SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)


def self_contained(page: str) -> None:
    """No script fetched from anywhere, and plotly.js inlined exactly once."""
    assert not SCRIPT_SRC.search(page), "a <script src=...> would need a network or a file beside the page"
    assert not re.search(r"""<link[^>]+href=["']https?://""", page, re.IGNORECASE)
    assert page.count(str(plotly_js())[:500]) == 1


def test_compliance_page_shows_every_proof_fairness_and_cards(sources: Sources) -> None:
    report = compliance_report(sources, replay_sample=5)
    page = report.html
    self_contained(page)
    assert [p.count for p in report.proofs] == [0, 0, 0, 0] and report.chain.ok
    for proof in report.proofs:
        assert f'id="proof-{proof.key}-count">0<' in page
        assert proof.query.splitlines()[0].replace("'", "&#39;") in page
    assert page.count('class="fairness"') == 3 and page.count('class="plotly-graph-div"') == 3
    assert sum(c.markdown is not None for c in report.cards) == 16
    assert "Model card: nba-dental_checkup" in page


def test_empty_or_missing_database_is_refused_by_name(tmp_path: Path, report_world: ReportWorld) -> None:
    empty_url = f"sqlite:///{_empty_db(tmp_path)}"
    empty = Sources.from_settings(report_world.settings.model_copy(update={"database_url": empty_url}))
    with pytest.raises(ReportError, match="holds no decision"):
        compliance_report(empty)
    empty.close()
    missing = report_world.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/none.db"})
    with pytest.raises(ConfigError, match=r"none\.db \(NBA_DATABASE_URL\) does not exist"):
        Sources.from_settings(missing)
    assert not (tmp_path / "none.db").exists()


def _empty_db(tmp_path: Path) -> Path:
    from serving.db import open_engine

    path = tmp_path / "empty.db"
    open_engine(f"sqlite:///{path}").dispose()
    return path


def test_decision_page_shows_what_the_member_read_and_why(
    sources: Sources, report_world: ReportWorld
) -> None:
    assert report_world.made.offer_request is not None
    request_id = report_world.made.offer_request[0]
    record = AuditLog(sources.engine).get(request_id)
    assert record is not None
    page = decision_page(sources, request_id)
    self_contained(page)
    for action_id in record["returned"]:
        text = record["explanations"][action_id]["text"]
        assert text.replace("'", "&#39;") in page
    assert "Replays identically" in page
    for candidate in record["candidates"]:
        if candidate["reason"]:
            assert candidate["reason"] in page
    with pytest.raises(NotFoundError, match="request_id 'nope' has no decision record"):
        decision_page(sources, "nope")


# -- served ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(report_world: ReportWorld) -> Iterator[TestClient]:
    """The pages on a test app behind the service's auth middleware, on the report world."""
    pages = FastAPI()
    pages.include_router(router)
    settings = Settings(
        database_url=report_world.database_url, mlflow_tracking_uri=report_world.served.tracking_uri
    )
    with service(settings):
        yield TestClient(AuthMiddleware(pages))


@pytest.fixture
def roles() -> None:
    """The pages are guarded by serving/app.py's own ROUTE_ROLES (no test-made entries)."""
    assert {"/reports/compliance", "/reports/decision/", "/reports/experiments"} <= set(
        service_app.ROUTE_ROLES
    )


def key(world: ReportWorld, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.served.keys[role]}"}


def test_served_compliance_page_needs_the_compliance_role(
    client: TestClient, report_world: ReportWorld, roles: Any
) -> None:
    assert client.get("/reports/compliance").status_code == 401
    assert client.get("/reports/compliance", headers=key(report_world, "app")).status_code == 403
    answer = client.get("/reports/compliance?replay_sample=3", headers=key(report_world, "compliance"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "connect-src 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    self_contained(answer.text)


def test_served_decision_page_is_logged_and_404s(
    client: TestClient, report_world: ReportWorld, roles: Any
) -> None:
    request_id = report_world.made.request_ids[0]
    before = len(AuditLog(_engine(report_world)).reads(request_id))
    answer = client.get(f"/reports/decision/{request_id}", headers=key(report_world, "compliance"))
    assert answer.status_code == 200 and request_id in answer.text
    reads = AuditLog(_engine(report_world)).reads(request_id)
    assert len(reads) == before + 1 and reads[-1].role == "compliance"
    missing = client.get("/reports/decision/nope", headers=key(report_world, "compliance"))
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_served_experiments_page_for_admin(client: TestClient, report_world: ReportWorld, roles: Any) -> None:
    answer = client.get("/reports/experiments?offline=false", headers=key(report_world, "admin"))
    assert answer.status_code == 200 and 'id="verdict"' in answer.text
    assert client.get("/reports/experiments", headers=key(report_world, "app")).status_code == 403


def test_a_page_left_out_of_route_roles_is_refused(
    client: TestClient, report_world: ReportWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(service_app.ROUTE_ROLES, "/reports/compliance")
    answer = client.get("/reports/compliance", headers=key(report_world, "compliance"))
    assert answer.status_code == 503 and "role check" in answer.json()["message"]


def _engine(world: ReportWorld) -> Any:
    from serving.app import STATE

    assert STATE.runtime is not None
    return STATE.runtime.engine
