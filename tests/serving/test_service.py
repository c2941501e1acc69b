"""The service in process (FastAPI test client on the real app, middleware and stores)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from features import registry
from nba.settings import Settings
from serving.app import STATE, app
from serving.auth import AuthMiddleware
from serving.engine import Caller, Runtime
from serving.models import feature_vector
from tests.conftest import Served

NOTICE = "2025-09"


@pytest.fixture(scope="module")
def runtime(served: Served) -> Iterator[Runtime]:
    settings = Settings(
        database_url=served.database_url, mlflow_tracking_uri=served.tracking_uri, control_share=0.0
    )
    STATE.start(lambda: Runtime(settings))
    assert STATE.runtime is not None, STATE.error
    yield STATE.runtime
    STATE.runtime = None


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> TestClient:
    return TestClient(AuthMiddleware(app))


def auth(served: Served, role: str = "app") -> dict[str, str]:
    return {"Authorization": f"Bearer {served.keys[role]}"}


def members(runtime: Runtime, n: int, **wanted: Any) -> list[int]:
    """Published members whose profile values match ``wanted`` (first ``n`` by id)."""
    found = []
    with runtime.engine.connect() as conn:
        ids = [
            row[0] for row in conn.execute(text(f"select member_id from {current_table(runtime)} order by 1"))
        ]
    for member_id in ids:
        profile = runtime.profiles.get(member_id)
        assert profile is not None
        if all(profile.values.get(k) == v for k, v in wanted.items()):
            found.append(member_id)
            if len(found) == n:
                break
    return found


def current_table(runtime: Runtime) -> str:
    from features.store import profiles_table

    load = runtime.profiles.current()
    assert load is not None
    return profiles_table(load.load_id)


def consent(
    client: TestClient, served: Served, member_id: int, purpose: str, decision: str, **kw: Any
) -> None:
    body = {"member_id": member_id, "purpose": purpose, "decision": decision, "notice_version": NOTICE,
            "source": "app", "actor": "member"} | kw  # fmt: skip
    response = client.post("/consent", json=body, headers=auth(served))
    assert response.status_code == 201, response.text


def recommend(client: TestClient, served: Served, member_id: int, **kw: Any) -> dict[str, Any]:
    body = {"member_id": member_id, "channel": "app", "max_items": 16} | kw
    response = client.post("/recommend", json=body, headers=auth(served))
    assert response.status_code == 200, response.text
    return dict(response.json())


def grant_all(client: TestClient, served: Served, member_id: int) -> None:
    for purpose in ("prevention", "offers", "offers_health_data"):
        consent(client, served, member_id, purpose, "granted")


def audit_count(runtime: Runtime, request_id: str) -> int:
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                text("select count(*) from audit_log where request_id = :r"), {"r": request_id}
            ).scalar_one()
        )


def test_recommend_ranks_explains_and_audits(client: TestClient, served: Served, runtime: Runtime) -> None:
    member = members(runtime, 1, age=45)[0]
    grant_all(client, served, member)
    body = recommend(client, served, member, max_items=3)
    assert 1 <= len(body["items"]) <= 3
    assert [i["rank"] for i in body["items"]] == list(range(1, len(body["items"]) + 1))
    priorities = [i["arbitration"]["priority"] for i in body["items"]]
    assert priorities == sorted(priorities, reverse=True)
    seen = {i["action_id"] for i in body["items"]} | {s["action_id"] for s in body["suppressed"]}
    assert len(seen) == 16 and len(body["items"]) + len(body["suppressed"]) == 16
    assert audit_count(runtime, body["request_id"]) == 1
    assert body["variant"] == "champion"


def test_explanations_are_french_sentences_from_the_members_own_values(
    client: TestClient, served: Served, runtime: Runtime
) -> None:
    checked = 0
    for member in members(runtime, 12, online_account=True):
        grant_all(client, served, member)
        profile = runtime.profiles.get(member)
        assert profile is not None
        for item in recommend(client, served, member)["items"]:
            explanation = item["explanation"]
            assert explanation["text"].strip(), item
            for factor in explanation["factors"]:
                feature = registry.BY_NAME[factor["feature"]]
                assert factor["value"] == profile.values[factor["feature"]]
                assert feature.sentence(factor["value"], "fr") in explanation["text"]
                assert factor["label"] == feature.label_fr and factor["contribution"] > 0
                if item["kind"] == "offer":
                    assert feature.category != "health_claims", factor
                checked += 1
    assert checked > 0


def test_no_other_offers_stops_every_offer(client: TestClient, served: Served, runtime: Runtime) -> None:
    for member in members(runtime, 5, age=40):
        grant_all(client, served, member)
        consent(client, served, member, "offers", "no_other_offers")
        body = recommend(client, served, member)
        assert all(i["kind"] == "prevention" for i in body["items"]), body["items"]
        reasons = {s["action_id"]: s["reason"] for s in body["suppressed"]}
        assert reasons["prevoyance"] == "NO_OTHER_OFFERS"
        assert reasons["health_formula_upgrade"] == "NO_OTHER_OFFERS"


def test_withdrawal_takes_effect_on_the_next_request(
    client: TestClient, served: Served, runtime: Runtime
) -> None:
    # a member who is shown a prevention action while consent stands
    for member in members(runtime, 10, age=55):
        grant_all(client, served, member)
        if any(i["kind"] == "prevention" for i in recommend(client, served, member)["items"]):
            break
    else:
        pytest.fail("none of ten members aged 55 was shown a prevention action")
    consent(client, served, member, "prevention", "withdrawn")
    after = recommend(client, served, member)
    assert all(i["purpose"] != "prevention" for i in after["items"])
    reasons = {s["action_id"]: s["reason"] for s in after["suppressed"]}
    assert reasons["dental_checkup"] == "WITHDRAWN"


def test_health_formula_upgrade_needs_health_data_consent(
    client: TestClient, served: Served, runtime: Runtime
) -> None:
    for member in members(runtime, 10, formula_level=1):
        consent(client, served, member, "offers_health_data", "withdrawn")
        body = recommend(client, served, member)
        assert "health_formula_upgrade" not in {i["action_id"] for i in body["items"]}
        reason = {s["action_id"]: s["reason"] for s in body["suppressed"]}["health_formula_upgrade"]
        assert reason in {"WITHDRAWN", "HEALTH_DATA_NOT_CONSENTED", "OBJECTED", "NO_OTHER_OFFERS", "MINOR",
                          "VULNERABLE", "CONTACT_POLICY"}  # fmt: skip


def test_dismissed_action_is_not_shown_again(client: TestClient, served: Served, runtime: Runtime) -> None:
    member = members(runtime, 1, age=50)[0]
    grant_all(client, served, member)
    body = recommend(client, served, member)
    first = body["items"][0]["action_id"]
    feedback = {"request_id": body["request_id"], "action_id": first, "event": "dismissed"}
    response = client.post("/feedback", headers=auth(served), json=feedback)
    assert response.status_code == 201, response.text
    again = recommend(client, served, member)
    assert first not in {i["action_id"] for i in again["items"]}
    assert {s["action_id"]: s["reason"] for s in again["suppressed"]}[first] == "CONTACT_POLICY"


def test_feedback_must_name_an_action_the_request_returned(
    client: TestClient, served: Served, runtime: Runtime
) -> None:
    member = members(runtime, 1, age=47)[0]
    body = recommend(client, served, member, max_items=1)
    returned = {i["action_id"] for i in body["items"]}
    other = next(s["action_id"] for s in body["suppressed"] if s["action_id"] not in returned)
    feedback = {"request_id": body["request_id"], "action_id": other, "event": "clicked"}
    response = client.post("/feedback", headers=auth(served), json=feedback)
    assert response.status_code == 422 and "action_id" in response.text
    unknown = client.post("/feedback", headers=auth(served), json=feedback | {"request_id": "0" * 32})
    assert unknown.status_code == 404


def test_roles_and_keys(client: TestClient, served: Served, runtime: Runtime) -> None:
    member = members(runtime, 1)[0]
    body = {"member_id": member, "channel": "app"}
    assert client.post("/recommend", json=body).status_code == 401
    assert client.post("/recommend", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/recommend", json=body, headers=auth(served, "compliance")).status_code == 403
    request_id = recommend(client, served, member)["request_id"]
    assert client.post("/explain", json={"request_id": request_id}, headers=auth(served)).status_code == 403
    record = client.post("/explain", json={"request_id": request_id}, headers=auth(served, "compliance"))
    assert record.status_code == 200 and record.json()["request_id"] == request_id
    assert set(record.json()["candidates"][0]) >= {"action_id", "status", "reason", "score", "model"}
    with runtime.engine.connect() as conn:
        reads = conn.execute(
            text("select count(*) from audit_reads where request_id = :r"), {"r": request_id}
        )
        assert reads.scalar_one() == 1


def test_explain_derives_every_contribution_from_the_recorded_inputs(
    client: TestClient, served: Served, runtime: Runtime
) -> None:
    """The record keeps the features and model versions, not the contributions; /explain derives
    them, and they are LightGBM's own TreeSHAP (``Booster.predict(pred_contrib=True)``, another
    code path than the service's) and add up to the recorded score."""
    member = members(runtime, 1, age=52)[0]
    grant_all(client, served, member)
    body = recommend(client, served, member, max_items=3)
    assert body["items"]
    with runtime.engine.connect() as conn:
        stored = json.loads(
            conn.execute(
                text("select record from audit_log where request_id = :r"), {"r": body["request_id"]}
            ).scalar_one()
        )
    assert all("contributions" not in e for e in stored["explanations"].values())
    record = client.post(
        "/explain", json={"request_id": body["request_id"]}, headers=auth(served, "compliance")
    )
    assert record.status_code == 200, record.text
    derived = record.json()["contributions"]
    assert set(derived) == {i["action_id"] for i in body["items"]}
    models = runtime.require_models()
    vector = feature_vector(stored["features"])
    for item in body["items"]:
        model = models.champion[item["action_id"]]
        a, b = model.calibration
        row = model.booster.predict(
            vector[model.columns][None, :],
            pred_contrib=True,
            num_iteration=model.best_iteration,
            num_threads=1,
        )[0]
        assert list(derived[item["action_id"]]) == list(model.features)
        assert np.allclose(list(derived[item["action_id"]].values()), row[:-1] * a, rtol=0, atol=1e-12)
        score = next(c["score"] for c in stored["candidates"] if c["action_id"] == item["action_id"])
        assert math.isclose(a * row.sum() + b, math.log(score / (1 - score)), abs_tol=1e-9)
        for factor in item["explanation"]["factors"]:
            assert derived[item["action_id"]][factor["feature"]] == pytest.approx(
                factor["contribution"], abs=1e-6
            )


def test_refused_and_failed_hot_path_calls_are_logged(
    client: TestClient, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """BentoML does not access-log the hot routes (serving.service); their 4xx and 5xx answers are
    logged by the middleware, without body or key."""
    body = {"member_id": 999_999_999, "channel": "app"}
    with caplog.at_level(logging.WARNING, logger="nba.serving"):
        assert client.post("/recommend", json=body).status_code == 401
        assert client.post("/recommend", json=body, headers=auth(served)).status_code == 404
        lines = [r.getMessage() for r in caplog.records if "answered" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].endswith("POST /recommend answered 401") and lines[1].endswith("answered 404")
    assert not any(served.keys["app"] in line for line in lines)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/recommend", {"member_id": 1, "channel": "app", "colour": "red"}, "colour"),
        ("/recommend", {"member_id": "1", "channel": "app"}, "member_id"),
        ("/recommend", {"member_id": 1, "channel": "pigeon"}, "channel"),
        ("/recommend", {"member_id": 1, "channel": "app", "max_items": 0}, "max_items"),
        ("/recommend", {"member_id": 1, "channel": "app", "language": "de"}, "language"),
        ("/consent", {"member_id": 1, "purpose": "marketing", "decision": "granted", "notice_version": NOTICE,
                      "source": "app", "actor": "member"}, "purpose"),
        ("/consent", {"member_id": 1, "purpose": "offers", "decision": "granted", "notice_version": "1999",
                      "source": "app", "actor": "member"}, "notice_version"),
        ("/feedback", {"request_id": "x", "action_id": "eye_exam", "event": "shown"}, "request_id"),
    ],
)  # fmt: skip
def test_invalid_bodies_get_422_naming_the_field(
    client: TestClient, served: Served, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(path, json=body, headers=auth(served))
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["detail"]]


def test_malformed_json_and_oversize_bodies(client: TestClient, served: Served) -> None:
    headers = auth(served) | {"content-type": "application/json"}
    assert client.post("/recommend", content=b'{"member_id": 1,', headers=headers).status_code == 422
    big = json.dumps({"member_id": 1, "channel": "app", "pad": "x" * 100_000})
    assert client.post("/recommend", content=big, headers=headers).status_code == 413


def test_backdated_consent_is_refused(client: TestClient, served: Served, runtime: Runtime) -> None:
    member = members(runtime, 1)[0]
    body = {"member_id": member, "purpose": "prevention", "decision": "granted", "notice_version": NOTICE,
            "source": "app", "actor": "member", "effective_from": "2020-01-01T00:00:00Z"}  # fmt: skip
    response = client.post("/consent", json=body, headers=auth(served))
    assert response.status_code == 422 and "effective_from" in response.text


def test_unknown_member_is_404(client: TestClient, served: Served) -> None:
    response = client.post(
        "/recommend", json={"member_id": 999_999_999, "channel": "app"}, headers=auth(served)
    )
    assert response.status_code == 404


def test_consent_store_down_fails_closed(
    client: TestClient, served: Served, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(member_id: int) -> list[Any]:
        raise ConnectionError("consent database unreachable")

    monkeypatch.setattr(runtime.consent, "events", broken)
    member = members(runtime, 1, age=45)[0]
    response = client.post("/recommend", json={"member_id": member, "channel": "app"}, headers=auth(served))
    assert response.status_code == 503
    assert "consent" in response.json()["message"]


def test_replay_is_identical(client: TestClient, served: Served, runtime: Runtime) -> None:
    from serving.replay import replay

    for member in members(runtime, 5, age=60):
        grant_all(client, served, member)
        request_id = recommend(client, served, member)["request_id"]
        record = runtime.audit.get(request_id)
        assert record is not None
        assert runtime.models is not None
        report = replay(record, runtime.models, runtime.catalogue)
        assert report.identical, report.as_dict()
        assert report.replayed_ranking == list(record["returned"])


def test_audit_chain_verifies_after_requests(client: TestClient, served: Served, runtime: Runtime) -> None:
    assert runtime.audit.verify().ok


def test_without_models_the_service_is_not_ready_and_refuses(served: Served, tmp_path: Any) -> None:
    from serving.app import State

    settings = Settings(database_url=served.database_url, mlflow_tracking_uri=f"sqlite:///{tmp_path}/none.db")
    state = State()
    state.start(lambda: Runtime(settings))
    assert state.runtime is not None and state.runtime.models is None
    assert any(p.startswith("models:") for p in state.problems())
    with pytest.raises(Exception, match="no models loaded"):
        state.runtime.recommend(1, "app", 3, "fr", Caller("k", "app"))


def test_experiment_split_changes_without_restart(
    client: TestClient, served: Served, runtime: Runtime
) -> None:
    member = members(runtime, 1, age=44)[0]
    grant_all(client, served, member)
    split = {"challenger_share": 0.0, "control_share": 1.0, "salt": "test"}
    assert client.post("/experiment", json=split, headers=auth(served)).status_code == 403
    changed = client.post("/experiment", json=split, headers=auth(served, "admin"))
    assert changed.status_code == 201, changed.text
    try:
        body = recommend(client, served, member)
        assert body["variant"] == "control"
        assert all(i["kind"] == "prevention" for i in body["items"])
        reasons = {s["action_id"]: s["reason"] for s in body["suppressed"]}
        assert {reasons[a] for a in ("home_insurance", "auto_insurance")} <= {
            "CONTROL_GROUP",
            "NO_OTHER_OFFERS",
        }
        record = runtime.audit.get(body["request_id"])
        assert record is not None and record["variant"] == "control" and record["experiment"] == split
        bad = client.post(
            "/experiment", json=split | {"challenger_share": 0.5}, headers=auth(served, "admin")
        )
        assert bad.status_code == 422 and "control_share" in bad.text
    finally:
        reset = {"challenger_share": 0.0, "control_share": 0.0, "salt": "test"}
        assert client.post("/experiment", json=reset, headers=auth(served, "admin")).status_code == 201
    assert recommend(client, served, member)["variant"] == "champion"
