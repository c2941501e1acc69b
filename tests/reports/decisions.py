"""Decisions made through the real service in process, for the reports to read.

`make_decisions` drives `serving.app` with FastAPI's TestClient (as tests/serving/test_service.py
does): consent grants, members who said "no other offers", recommendations on two variants and
feedback on the returned items. Deterministic: members are taken in id order.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from nba.settings import Settings
from serving.app import STATE, app
from serving.auth import AuthMiddleware
from serving.engine import Runtime

NOTICE = "2025-09"


@dataclass
class Made:
    """What `make_decisions` did, for tests to check the reports against."""

    request_ids: list[str] = field(default_factory=list)
    no_other_offers: list[int] = field(default_factory=list)
    offer_request: tuple[str, int, str] | None = None
    """A decision that returned an offer: (request_id, member_id, action_id)."""
    feedback: int = 0


def copy_sqlite(source_url: str, target: Path) -> str:
    """A consistent copy of a SQLite database (its WAL included), as a URL."""
    src = sqlite3.connect(source_url.removeprefix("sqlite:///"))
    dst = sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


@contextlib.contextmanager
def service(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    """The service's app in process on ``settings``; the previous runtime is put back afterwards."""
    previous = STATE.runtime, STATE.error
    STATE.start(lambda: Runtime(settings))
    assert STATE.runtime is not None, STATE.error
    try:
        yield TestClient(AuthMiddleware(app)), STATE.runtime
    finally:
        STATE.runtime, STATE.error = previous


def member_ids(runtime: Runtime, n: int, keep: Callable[[dict[str, Any]], bool]) -> list[int]:
    """The first ``n`` published members (by id) whose profile values pass ``keep``."""
    from features.store import profiles_table

    load = runtime.profiles.current()
    assert load is not None
    with runtime.engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(text(f"select member_id from {profiles_table(load.load_id)} order by 1"))
        ]
    found = []
    for member_id in ids:
        profile = runtime.profiles.get(member_id)
        if profile is not None and keep(profile.values):
            found.append(member_id)
            if len(found) == n:
                break
    return found


def _post(client: TestClient, path: str, key: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == status, response.text
    return dict(response.json())


def make_decisions(client: TestClient, runtime: Runtime, app_key: str, members: int = 40) -> Made:
    """Grants for adults, "no other offers" for every fifth one, two requests each, feedback."""
    made = Made()
    adults = member_ids(runtime, members, lambda v: 25 <= (v.get("age") or 0) <= 70)
    for i, member_id in enumerate(adults):
        for purpose in ("prevention", "offers", "offers_health_data")[: 3 if i % 2 == 0 else 2]:
            body = {"member_id": member_id, "purpose": purpose, "decision": "granted",
                    "notice_version": NOTICE, "source": "app", "actor": "member"}  # fmt: skip
            _post(client, "/consent", app_key, body, 201)
        if i % 5 == 4:
            body = {"member_id": member_id, "purpose": "offers", "decision": "no_other_offers",
                    "notice_version": NOTICE, "source": "app", "actor": "member"}  # fmt: skip
            _post(client, "/consent", app_key, body, 201)
            made.no_other_offers.append(member_id)
        for channel in ("app", "advisor"):
            body = {"member_id": member_id, "channel": channel, "max_items": 3}
            answer = _post(client, "/recommend", app_key, body, 200)
            made.request_ids.append(answer["request_id"])
            _feedback(client, app_key, answer, member_id, made)
    return made


def _feedback(client: TestClient, key: str, answer: dict[str, Any], member_id: int, made: Made) -> None:
    for item in answer["items"]:
        events = ["shown"]
        if (member_id + item["rank"]) % 3 == 0:
            events.append("clicked")
        if (member_id + item["rank"]) % 4 == 0:
            events.append("accepted")
        for event in events:
            body = {"request_id": answer["request_id"], "action_id": item["action_id"], "event": event}
            _post(client, "/feedback", key, body, 201)
            made.feedback += 1
        if item["kind"] == "offer" and made.offer_request is None:
            made.offer_request = (answer["request_id"], member_id, item["action_id"])
