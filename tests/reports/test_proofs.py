"""The proofs of COMPLIANCE.md: zero on honest decisions, and a planted violation is counted."""

from __future__ import annotations

import datetime as dt
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from reports import proofs
from reports.proofs import Proof, all_proofs
from reports.sources import Sources
from serving.audit import AuditLog
from serving.consent import ConsentStore
from serving.db import open_engine
from tests.reports.conftest import ReportWorld

NOTICE = "2025-09"


def run_proof(step: Any, sources: Sources, **kw: Any) -> Proof:
    proof = Proof("?", "", "", "", "")
    step(sources, proof, **kw)
    return proof


def test_every_proof_holds_on_honest_decisions(sources: Sources, report_world: ReportWorld) -> None:
    found = {p.key: p for p in all_proofs(sources, replay_sample=8)}
    assert [(k, p.error, p.count) for k, p in found.items()] == [(k, None, 0) for k in "1234"]
    assert found["2"].inspected, "some offers were scored without health-data consent: proof 2 inspects them"
    assert 1 <= (found["4"].inspected or 0) <= 8
    assert report_world.made.no_other_offers, "the world has members who said no other offers"
    assert "consent_events" in found["1"].query and "json_extract" in found["1"].query


def plant_offer_after_no_other_offers(world: ReportWorld, url: str) -> str:
    """An audit record returning one offer a second after the member's "no other offers"."""
    assert world.made.offer_request is not None
    request_id, member_id, action_id = world.made.offer_request
    engine = open_engine(url)
    log = AuditLog(engine)
    record = log.get(request_id)
    assert record is not None
    event = ConsentStore(engine).append(
        member_id, "offers", "all", "no_other_offers", NOTICE, "app", "member"
    )
    planted = json.loads(json.dumps(record))
    planted["request_id"] = "planted-" + request_id
    planted["time"] = (event.effective_from + dt.timedelta(milliseconds=1)).isoformat()
    planted["returned"] = [action_id]
    for candidate in planted["candidates"]:
        if candidate["status"] == "returned" and candidate["action_id"] != action_id:
            candidate["status"], candidate["reason"], candidate["rank"] = "suppressed", "LOWER_PRIORITY", None
    log.append(planted)
    engine.dispose()
    return str(planted["request_id"])


def test_an_offer_after_no_other_offers_is_counted(report_world: ReportWorld, planted_copy: str) -> None:
    planted = plant_offer_after_no_other_offers(report_world, planted_copy)
    sources = report_world.sources(planted_copy)
    try:
        proof = run_proof(proofs.offers_after_refusal, sources)
        trace = run_proof(proofs.consent_trace, sources)
    finally:
        sources.close()
    assert proof.count == 1 and not proof.ok
    assert proof.examples[0][0] == planted and proof.examples[0][4] == "no_other_offers"
    assert trace.count == 0, "the planted record copies a real, consistent consent trace"


def test_an_earlier_refusal_then_a_new_grant_is_not_counted(
    report_world: ReportWorld, planted_copy: str
) -> None:
    """The event in force decides: a grant captured after the refusal lifts it."""
    assert report_world.made.offer_request is not None
    _, member_id, _ = report_world.made.offer_request
    planted = plant_offer_after_no_other_offers(report_world, planted_copy)
    engine = open_engine(planted_copy)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    ConsentStore(engine).append(member_id, "offers", "all", "granted", NOTICE, "app", "member", soon)
    log = AuditLog(engine)
    later = log.get(planted)
    assert later is not None
    later["request_id"] = planted + "-later"
    later["time"] = (soon + dt.timedelta(milliseconds=1)).isoformat()
    log.append(later)
    engine.dispose()
    sources = report_world.sources(planted_copy)
    try:
        proof = run_proof(proofs.offers_after_refusal, sources)
    finally:
        sources.close()
    assert [row[0] for row in proof.examples] == [planted]


# -- the same SQL on SQLite and PostgreSQL, on hand-made records ----------------------------------


def verdicts(allowed: dict[str, tuple[bool, list[int]]]) -> dict[str, Any]:
    return {p: {"allowed": ok, "reason": None if ok else "NO_CONSENT", "events_used": used}
            for p, (ok, used) in allowed.items()}  # fmt: skip


def hand_record(
    request_id: str, member_id: int, at: dt.datetime, events: list[Any], **over: Any
) -> dict[str, Any]:
    """A minimal decision record returning the offer ``prevoyance`` (scored by nba-prevoyance v1)."""
    offer = {"action_id": "prevoyance", "kind": "offer", "purpose": "offers", "status": "returned",
             "reason": None, "score": 0.2, "value": 4.0, "lever": 1.0, "priority": 0.8,
             "model": {"name": "nba-prevoyance", "version": "1"}, "rank": 1}  # fmt: skip
    grants = [e.event_id for e in events if e.decision == "granted"]
    record = {
        "request_id": request_id,
        "time": at.isoformat(),
        "member_id": member_id,
        "status": 200,
        "variant": "champion",
        "consent": verdicts(
            {"prevention": (False, []), "offers": (True, grants), "offers_health_data": (False, [])}
        ),
        "consent_events": [{"event_id": e.event_id} for e in events if e.event_id in grants],
        "candidates": [offer],
        "returned": ["prevoyance"],
        "explanations": {},
    }
    return record | over


class FakeRegistry:
    """A registry whose ``nba-prevoyance`` v1 uses the features given."""

    def __init__(self, features: list[str]) -> None:
        self.features = features

    def get_model_version(self, name: str, version: str) -> Any:
        if (name, version) != ("nba-prevoyance", "1"):
            raise LookupError(name)
        return SimpleNamespace(tags={"features": json.dumps(self.features)})


def hand_sources(url: str, features: list[str]) -> Sources:
    from nba.catalogue import default_catalogue

    engine = open_engine(url)
    models = SimpleNamespace(client=FakeRegistry(features))
    return Sources(engine=engine, tracking_uri="unused", database_label=url, catalogue=default_catalogue(),
                   models=models)  # fmt: skip


@pytest.mark.parametrize("health_feature", [False, True])
def test_proofs_on_both_databases(store_url: str, health_feature: bool) -> None:
    features = ["age", "tenure_months"] + (["dental_out_of_pocket_12m"] if health_feature else [])
    sources = hand_sources(store_url, features)
    consent, log = ConsentStore(sources.engine), AuditLog(sources.engine)
    grant = consent.append(7, "offers", "all", "granted", NOTICE, "app", "member")
    before = dt.datetime.now(dt.UTC)
    log.append(hand_record("ok", 7, before, [grant]))
    time.sleep(0.002)  # the objection takes effect strictly after "ok" was decided, however fast the append
    refusal = consent.append(7, "offers", "all", "objected", NOTICE, "app", "member")
    log.append(hand_record("after", 7, refusal.effective_from + dt.timedelta(microseconds=1), [grant]))
    log.append(
        hand_record("no-trace", 8, before, [], consent={"offers": {"allowed": True, "events_used": [999]}})
    )
    try:
        first = run_proof(proofs.offers_after_refusal, sources)
        second = run_proof(proofs.health_data, sources)
        third = run_proof(proofs.consent_trace, sources)
    finally:
        sources.close()
    assert [(r[0], r[1], r[4]) for r in first.examples] == [("after", "prevoyance", "objected")]
    assert second.inspected == 3 and second.count == (3 if health_feature else 0)
    problems = {tuple(r) for r in third.examples}
    assert problems == {
        ("no-trace", "no verdict for every purpose"),
        ("no-trace", "cites an event the registry does not hold for the member"),
        ("no-trace", "cites an event its record does not copy"),
    }
