"""The serving half of `nba demo`: start the service, ask it for three members, show the answers.

One member has said "no other offers", to show the consent gate at work: they get prevention
actions only, and the internal `suppressed` list says why every offer was held back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel

from nba.errors import NbaError

NOTICE = "2025-09"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_service(
    port: int, log: Path, keep: bool = False, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[str]:
    """`nba serve` in a child process until the block ends (or forever with ``keep``)."""
    nba = Path(sys.executable).with_name("nba")
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [str(nba), "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   env=None if env is None else os.environ | env)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield url
        if keep:
            process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NbaError(f"the service exited with code {process.returncode}; its log: {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise NbaError(f"the service was not ready after {seconds:.0f} s; its log: {log}")


def call(url: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    if response.status_code >= 400:
        raise NbaError(f"POST {path} answered {response.status_code}: {response.text[:300]}")
    return dict(response.json())


def show(console: Console, title: str, body: dict[str, Any]) -> None:
    lines = []
    for item in body["items"]:
        lines.append(f"[bold]{item['rank']}. {item['title']}[/] ({item['kind']}, score {item['score']:.3f})")
        lines.append(f"   {item['explanation']['text']}")
    if not body["items"]:
        lines.append("(aucune action)")
    held = ", ".join(
        f"{s['action_id']}={s['reason']}" for s in body["suppressed"] if s["reason"] != "NOT_ELIGIBLE"
    )
    lines.append(f"[dim]internal only, never shown to the member: {held or '—'}[/]")
    lines.append(f"[dim]request_id {body['request_id']}, variant {body['variant']}[/]")
    console.print(Panel("\n".join(lines), title=title, title_align="left"))


def demo_requests(console: Console, url: str, keys: dict[str, str], members: list[int]) -> None:
    """Three members' recommendations. The third says "no other offers": it is the first of the
    remaining ``members`` who is shown a prevention action, so the gate has something to keep."""
    app_key = keys["app"]

    def consent(member: int, purpose: str, decision: str) -> None:
        body = {"member_id": member, "purpose": purpose, "decision": decision, "notice_version": NOTICE,
                "source": "app", "actor": "member"}  # fmt: skip
        call(url, "/consent", app_key, body)

    def recommend(member: int) -> dict[str, Any]:
        consent(member, "prevention", "granted")
        consent(member, "offers", "granted")
        return call(url, "/recommend", app_key, {"member_id": member, "channel": "app", "max_items": 3})

    for member in members[:2]:
        show(console, f"member {member}", recommend(member))
    rest = members[2:] or members[-1:]
    for member in rest:
        shown = recommend(member)["items"]
        if any(item["kind"] == "prevention" for item in shown) or member == rest[-1]:
            break
    consent(member, "offers", "no_other_offers")
    body = call(url, "/recommend", app_key, {"member_id": member, "channel": "app", "max_items": 3})
    show(console, f"member {member} — a dit « pas d'autres offres » (no other offers): prevention only", body)


def how_to_call(console: Console, url: str, keys: dict[str, str], member: int) -> None:
    console.print(
        f"\nThe service runs at {url} (OpenAPI page {url}/docs); Ctrl-C stops it. Try:\n"
        f"  curl -s {url}/recommend -H 'Authorization: Bearer {keys['app']}' "
        f'-H \'content-type: application/json\' -d \'{{"member_id": {member}, "channel": "app"}}\'\n'
        f"Compliance key (for /explain): {keys['compliance']}",
        highlight=False,
        soft_wrap=True,
    )
