"""The demo's third member, who says "no other offers", is one the gate has something to keep."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from nba import demo


def test_no_other_offers_goes_to_the_first_remaining_member_shown_prevention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinds = {
        1: ["offer"],
        2: ["prevention"],
        3: [],
        4: ["offer", "offer"],
        5: ["offer", "prevention"],
        6: ["prevention"],
    }
    refused: set[int] = set()
    posted: list[tuple[int, str, str]] = []

    def fake_call(url: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        member = body["member_id"]
        if path == "/consent":
            posted.append((member, body["purpose"], body["decision"]))
            if body["decision"] == "no_other_offers":
                refused.add(member)
            return {}
        shown = [k for k in kinds[member] if not (k == "offer" and member in refused)]
        items = [
            {"rank": i + 1, "title": k, "kind": k, "score": 0.1, "explanation": {"text": "t"}}
            for i, k in enumerate(shown)
        ]
        return {"items": items, "suppressed": [], "request_id": f"r{member}", "variant": "champion"}

    monkeypatch.setattr(demo, "call", fake_call)
    console = Console(width=200, record=True)
    demo.demo_requests(console, "http://x", {"app": "k"}, [1, 2, 3, 4, 5, 6])
    # members 1 and 2 as they are; of 3, 4, 5, 6 the first shown prevention is 5
    assert [m for m, _, d in posted if d == "no_other_offers"] == [5]
    text = console.export_text()
    assert "member 5 — a dit « pas d'autres offres »" in text and "member 6" not in text


def test_with_no_member_shown_prevention_the_last_one_still_says_no_other_offers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    posted: list[tuple[int, str]] = []

    def fake_call(url: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/consent":
            posted.append((body["member_id"], body["decision"]))
            return {}
        return {"items": [], "suppressed": [], "request_id": "r", "variant": "champion"}

    monkeypatch.setattr(demo, "call", fake_call)
    demo.demo_requests(Console(record=True), "http://x", {"app": "k"}, [1, 2, 3, 4])
    assert [m for m, d in posted if d == "no_other_offers"] == [4]
