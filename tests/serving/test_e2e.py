"""End to end against a real `nba serve` (BentoML) process on a small published world."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Served

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
NOTICE = "2025-09"


@pytest.fixture(scope="module")
def server(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from nba.demo import free_port, running_service

    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = served.env | {"BENTOML_HOME": str(log.parent / "bentoml")}
    with running_service(free_port(), log, env=env) as url:
        yield url


def post(url: str, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def consent(url: str, served: Served, member: int, purpose: str, decision: str) -> None:
    body = {"member_id": member, "purpose": purpose, "decision": decision, "notice_version": NOTICE,
            "source": "app", "actor": "member"}  # fmt: skip
    response = post(url, "/consent", served.keys["app"], body)
    assert response.status_code == 201, response.text


def recommend(url: str, served: Served, member: int) -> dict[str, Any]:
    response = post(
        url, "/recommend", served.keys["app"], {"member_id": member, "channel": "app", "max_items": 16}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def some_members(served: Served, n: int) -> list[int]:
    engine = create_engine(served.database_url)
    with engine.connect() as conn:
        load = conn.execute(text("select max(load_id) from online_loads")).scalar_one()
        rows = conn.execute(
            text(f"select member_id from online_profiles_{load} order by member_id limit {n}")
        )
        return [int(r[0]) for r in rows]


def test_infrastructure_routes(server: str, served: Served) -> None:
    recommend(server, served, some_members(served, 1)[0])
    assert httpx.get(f"{server}/healthz").status_code == 200
    assert httpx.get(f"{server}/readyz").status_code == 200
    assert "nba_decisions" in httpx.get(f"{server}/metrics").text
    spec = httpx.get(f"{server}/docs.json").json()
    assert {"/recommend", "/consent", "/feedback", "/explain"} <= set(spec["paths"])


def test_consent_gate_end_to_end(server: str, served: Served) -> None:
    members = some_members(served, 40)[20:30]
    for member in members:
        for purpose in ("prevention", "offers"):
            consent(server, served, member, purpose, "granted")
        consent(server, served, member, "offers", "no_other_offers")
        body = recommend(server, served, member)
        assert all(i["kind"] == "prevention" for i in body["items"]), body["items"]
        assert "health_formula_upgrade" not in {i["action_id"] for i in body["items"]}
    member = members[0]
    assert any(i["purpose"] == "prevention" for i in recommend(server, served, member)["items"])
    consent(server, served, member, "prevention", "withdrawn")
    assert not recommend(server, served, member)["items"]


def test_health_data_offer_and_french_explanations_end_to_end(server: str, served: Served) -> None:
    from features import registry
    from features.store import OnlineStore
    from serving.consent import ConsentStore, check
    from serving.db import open_engine

    store = OnlineStore.from_url(served.database_url)
    registry_ = ConsentStore(open_engine(served.database_url))
    checked = without_health_consent = 0
    for member in some_members(served, 100)[40:100]:
        for purpose in ("prevention", "offers"):
            consent(server, served, member, purpose, "granted")
        events = registry_.events(member)
        body = recommend(server, served, member)
        now = dt.datetime.now(dt.UTC)  # after the grants above took effect, as for the service
        if not check(events, "offers_health_data", "app", now, adult=True, vulnerable=False).allowed:
            without_health_consent += 1
            assert "health_formula_upgrade" not in {i["action_id"] for i in body["items"]}
        profile = store.get(member)
        assert profile is not None
        for item in body["items"]:
            text_fr = item["explanation"]["text"]
            assert text_fr.strip() and item["title"]
            for factor in item["explanation"]["factors"]:
                assert factor["value"] == profile.values[factor["feature"]]
                assert registry.BY_NAME[factor["feature"]].sentence(factor["value"], "fr") in text_fr
                checked += 1
    store.close()
    assert checked > 0 and without_health_consent > 10


def test_roles_audit_chain_and_replay(server: str, served: Served) -> None:
    request_ids = [recommend(server, served, m)["request_id"] for m in some_members(served, 8)]
    explain = post(server, "/explain", served.keys["app"], {"request_id": request_ids[0]})
    assert explain.status_code == 403
    record = post(server, "/explain", served.keys["compliance"], {"request_id": request_ids[0]})
    assert record.status_code == 200 and record.json()["request_id"] == request_ids[0]
    engine = create_engine(served.database_url)
    with engine.connect() as conn:
        for request_id in request_ids:
            count = conn.execute(
                text("select count(*) from audit_log where request_id = :r"), {"r": request_id}
            )
            assert count.scalar_one() == 1
    env = os.environ | served.env
    verify = subprocess.run([str(BIN / "nba"), "audit", "verify"], env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for request_id in request_ids[:3]:
        done = subprocess.run(
            [str(BIN / "nba"), "replay", request_id], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "replays identically" in done.stdout


@pytest.mark.parametrize(
    ("role", "paths"), [("app", "recommend|consent|feedback"), ("compliance", "explain")]
)
def test_schema_fuzz_gets_no_server_error(
    server: str, served: Served, tmp_path: Path, role: str, paths: str
) -> None:
    done = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{server}/docs.json", "--checks", "not_a_server_error",
         "--header", f"Authorization: Bearer {served.keys[role]}", "--max-examples", "25",
         "--include-path-regex", f"^/({paths})$", "--workers", "1",
         "--suppress-health-check", "all", "--seed", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "generated" in done.stdout and " 0 generated" not in done.stdout


def test_killed_worker_loses_no_audit_record_of_a_200(server: str, served: Served) -> None:
    """Runs last: SIGKILL the worker while requests are in flight; every 200 has its record."""
    import threading

    import psutil

    members = some_members(served, 60)
    statuses: dict[str, int] = {}
    ok: list[str] = []

    def client(chunk: list[int]) -> None:
        for member in chunk * 5:
            try:
                response = post(
                    server, "/recommend", served.keys["app"], {"member_id": member, "channel": "app"}
                )
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                continue
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if response.status_code == 200:
                ok.append(response.json()["request_id"])

    threads = [threading.Thread(target=client, args=(members[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    port = server.rsplit(":", 1)[1]
    arbiter = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "serving.service:NextBestAction" in (line := " ".join(p.info["cmdline"] or [])) and port in line
    )
    workers = arbiter.children(recursive=True)
    assert workers, "no worker process found"
    for worker in workers:
        worker.kill()
    for thread in threads:
        thread.join()
    assert ok, statuses
    engine = create_engine(served.database_url)
    with engine.connect() as conn:
        logged = {r[0] for r in conn.execute(text("select request_id from audit_log"))}
    assert set(ok) <= logged, f"{len(set(ok) - logged)} answered requests have no audit record"
