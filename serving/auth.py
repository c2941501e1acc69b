"""API keys and body size, checked in an ASGI middleware before any route runs.

BentoML reserves 401 and 403 for its own errors, so they are answered here, on the service's
middleware stack: no key or an unknown key is 401, a key whose role may not call the route is
403, a body over NBA_MAX_BODY_BYTES is 413. Verified keys are remembered for a short,
configured time (NBA_KEY_CACHE_SECONDS) by their hash, never in clear.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nba.settings import get_settings
from serving.app import ROUTE_ROLES, STATE
from serving.engine import Caller
from serving.keys import key_id_of

log = logging.getLogger("nba.serving")
Resolved = tuple[str, str] | None  # (key_id, role)
HOT_PATHS: tuple[str, ...] = ("/recommend", "/feedback")
"""The routes every app request calls: BentoML neither traces nor access-logs them
(`serving.service`), so their refused or failed answers are logged here."""


def service_options() -> dict[str, Any]:
    """The options of `@bentoml.service` (`serving.service`, and the benchmark's ceiling service,
    which must run as the real one does): workers and threads from the environment, a 5 s
    request timeout, no tracing span nor access line on the hot paths."""
    settings = get_settings(fresh=True)
    return {
        "workers": settings.workers,
        "threads": settings.threads,
        "traffic": {"timeout": 5},
        "tracing": {"excluded_urls": [f"{path}$" for path in HOT_PATHS]},
        "logging": {"access": {"skip_paths": ["/metrics", "/healthz", "/livez", "/readyz", *HOT_PATHS]}},
    }


class _KeyCache:
    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Resolved]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, seconds: float) -> tuple[bool, Resolved]:
        with self._lock:
            hit = self._items.get(digest)
        if hit is None or time.monotonic() - hit[0] >= seconds:
            return False, None
        return True, hit[1]

    def put(self, digest: str, value: Resolved) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[digest] = (time.monotonic(), value)


async def _reply(
    send: Send, status: int, kind: str, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"error": kind, "message": message, "detail": []}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *headers],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def roles_for(path: str) -> frozenset[str] | None:
    """The roles ROUTE_ROLES gives ``path``: its exact entry, else the longest entry ending in
    ``/`` that starts it (``/reports/decision/`` covers ``/reports/decision/<request_id>``);
    None: no key needed."""
    roles = ROUTE_ROLES.get(path)
    if roles is not None:
        return roles
    prefixes = [p for p in ROUTE_ROLES if p.endswith("/") and path.startswith(p)]
    return ROUTE_ROLES[max(prefixes, key=len)] if prefixes else None


class AuthMiddleware:
    """Role check and body limit for the routes of `serving.app.ROUTE_ROLES`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cache = _KeyCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        roles = roles_for(scope.get("path", "")) if scope["type"] == "http" else None
        if roles is None:
            await self.app(scope, receive, send)
            return
        if scope["path"] in HOT_PATHS:
            send = _failures_logged(scope, send)
        if STATE.runtime is None:
            await _reply(send, 503, "unavailable", f"the service is not ready: {STATE.error}", [])
            return
        settings = STATE.runtime.settings
        key = bearer(scope)
        resolved = await self.resolve(key, settings.key_cache_seconds) if key else None
        if resolved is None:
            what = "an unknown API key" if key else "no API key (expected `Authorization: Bearer <key>`)"
            await _reply(send, 401, "unauthorized", f"{what}", [(b"www-authenticate", b"Bearer")])
            return
        key_id, role = resolved
        if role not in roles:
            message = f"role {role!r} may not call {scope['path']}; it needs one of {sorted(roles)}"
            await _reply(send, 403, "forbidden", message, [])
            return
        limit = settings.max_body_bytes
        length = declared_length(scope)
        if length is not None and length > limit:
            await _reply(send, 413, "too_large", f"body of {length} bytes; at most {limit} accepted", [])
            return
        scope.setdefault("state", {})["caller"] = Caller(key_id, role)
        await self.app(scope, _limited(receive, limit), send)

    async def resolve(self, key: str, seconds: float) -> Resolved:
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit, value = self.cache.get(digest, seconds)
        if hit:
            return value
        runtime = STATE.require()
        role = await run_in_threadpool(runtime.keys.role_of, key)
        key_id = key_id_of(key)
        value = None if role is None or key_id is None else (key_id, role)
        self.cache.put(digest, value)
        return value


def _failures_logged(scope: Scope, send: Send) -> Send:
    """``send``, logging the answer when its status is 400 or above (no body, no key)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            client = scope.get("client") or ("-", 0)
            log.warning(
                "%s:%s %s %s answered %d", client[0], client[1], scope["method"], scope["path"],
                message["status"],
            )  # fmt: skip
        await send(message)

    return wrapped


def _limited(receive: Receive, limit: int) -> Receive:
    """A body without Content-Length is counted as it streams; past the limit it is cut."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.request", "body": b"", "more_body": False, "nba_too_large": True}
        return message

    return wrapped
