"""The HTTP routes: thin wrappers around `serving.engine.Runtime`.

A FastAPI app mounted on the BentoML service (`serving.service`), so invalid bodies answer
422 with the field named on every route, and the routes appear in BentoML's OpenAPI page.
Roles are checked before a route runs, by `serving.auth.AuthMiddleware`.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from nba.errors import InvalidField, NbaError
from nba.settings import get_settings
from serving import schemas
from serving.engine import Caller, NotFoundError, Runtime, UnavailableError
from serving.experiment import Split

log = logging.getLogger("nba.serving")
T = TypeVar("T")

ROUTE_ROLES: dict[str, frozenset[str]] = {
    "/recommend": frozenset({"app"}),
    "/consent": frozenset({"app", "admin"}),
    "/feedback": frozenset({"app"}),
    "/explain": frozenset({"compliance"}),
    "/experiment": frozenset({"admin"}),
    "/reports/compliance": frozenset({"compliance"}),
    "/reports/decision/": frozenset({"compliance"}),
    "/reports/experiments": frozenset({"compliance", "admin"}),
}
"""Who may call what (ARCHITECTURE.md); an entry ending in ``/`` covers the paths under it; any
other path needs no key."""


class Threads:
    """The worker's request threads: at most NBA_THREADS routes compute at once, the others wait.

    BentoML's own ``threads`` option bounds only the service's API methods, not the routes of a
    mounted app, which ran on AnyIO's default pool of 40 threads whatever NBA_THREADS said: a
    worker computed as many decisions at once as it had requests in flight, each scoring thread
    (LightGBM releases the GIL) competing for the same cores."""

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # created in the worker's event loop, on its first request
            self._limiter = anyio.CapacityLimiter(get_settings().threads)
        return self._limiter

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=self.limiter)


THREADS = Threads()


class State:
    """The worker's runtime, built once at start; its error is kept when it cannot be built."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def start(self, factory: Callable[[], Runtime] = Runtime) -> None:
        with self._lock:
            try:
                self.runtime, self.error = factory(), None
            except NbaError as exc:
                self.runtime, self.error = None, str(exc)
                log.error("service cannot start its runtime: %s", exc)
            except Exception as exc:  # a database driver error: report it, serve 503s
                self.runtime, self.error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.error("service cannot start its runtime: %s", self.error)

    def require(self) -> Runtime:
        if self.runtime is None:
            raise UnavailableError(f"the service is not ready: {self.error or 'not started'}")
        return self.runtime

    def problems(self) -> list[str]:
        return self.require().problems() if self.runtime is not None else [f"runtime: {self.error}"]


STATE = State()
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorResponse, "description": text}
    for status, text in (
        (401, "No key, or an unknown key."),
        (403, "The key's role may not call this route."),
        (404, "Unknown member or request."),
        (413, "Body larger than NBA_MAX_BODY_BYTES."),
        (422, "Malformed JSON, a wrong type, an unknown field or a value out of range; `detail` names it."),
        (503, "Models, consent or databases unavailable: nothing is returned rather than something unsafe."),
    )
}

app = FastAPI(
    title="nba",
    description="Consent-gated next best actions with plain-language explanations.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    responses=ERRORS,
)


def error(status: int, kind: str, message: str, detail: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = {"error": kind, "message": message, "detail": detail or []}
    return JSONResponse(jsonable_encoder(body), status_code=status)


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    detail = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        received = err.get("input")
        if not isinstance(received, str | int | float | bool | None):
            received = str(received)[:200]
        field = ".".join(loc) if err.get("type") != "json_invalid" else ""
        detail.append({"field": field, "message": err.get("msg", "invalid"), "received": received})
    names = ", ".join(d["field"] or "body" for d in detail)
    return error(422, "invalid_request", f"invalid request body: {names}", detail)


@app.exception_handler(NbaError)
async def _nba_error(_: Request, exc: NbaError) -> JSONResponse:
    if isinstance(exc, NotFoundError):
        return error(404, "not_found", str(exc))
    if isinstance(exc, UnavailableError):
        return error(503, "unavailable", str(exc))
    if isinstance(exc, InvalidField):
        detail = [{"field": exc.field, "message": str(exc), "received": exc.received}]
        return error(422, "invalid_request", str(exc), detail)
    log.error("request refused: %s", exc)
    return error(400, "bad_request", str(exc))


def caller(request: Request) -> Caller:
    found = request.scope.get("state", {}).get("caller")
    if not isinstance(found, Caller):  # only reachable if the middleware is not installed
        raise UnavailableError("authentication middleware missing")
    return found


@app.post("/recommend", response_model=schemas.RecommendResponse, tags=["app"])
async def recommend(body: schemas.RecommendRequest, request: Request) -> Response:
    """A member's next best actions, after consent, eligibility and contact policy (role app)."""
    runtime, who = STATE.require(), caller(request)
    answer = await THREADS.run(
        runtime.recommend, body.member_id, body.channel, body.max_items, body.language, who
    )
    return Response(json.dumps(answer, ensure_ascii=False), media_type="application/json")


@app.post("/consent", response_model=schemas.ConsentResponse, status_code=201, tags=["app"])
async def consent(body: schemas.ConsentRequest, request: Request) -> Any:
    """Append a consent event; the server sets captured_at (roles app, admin)."""
    runtime = STATE.require()
    caller(request)
    fields = body.model_dump(exclude={"member_id"})
    return await THREADS.run(functools.partial(runtime.record_consent, body.member_id, **fields))


@app.post("/feedback", response_model=schemas.FeedbackResponse, status_code=201, tags=["app"])
async def feedback(body: schemas.FeedbackRequest, request: Request) -> dict[str, bool]:
    """Record what the member did with an action a request returned (role app)."""
    runtime = STATE.require()
    caller(request)
    await THREADS.run(runtime.record_feedback, body.request_id, body.action_id, body.event)
    return {"recorded": True}


@app.post("/explain", tags=["compliance"])
async def explain(body: schemas.ExplainRequest, request: Request) -> dict[str, Any]:
    """The full decision record of a request, with every feature's contribution to each returned
    action (exact TreeSHAP, recomputed from the recorded features and model versions); each read
    is logged (role compliance)."""
    runtime, who = STATE.require(), caller(request)
    return await THREADS.run(runtime.explain, body.request_id, who)


@app.post("/experiment", response_model=schemas.ExperimentResponse, status_code=201, tags=["admin"])
async def experiment(body: schemas.ExperimentRequest, request: Request) -> dict[str, object]:
    """Change the experiment split; every worker applies it within NBA_EXPERIMENT_REFRESH_SECONDS
    (role admin). Members keep their group while the split and salt stay the same."""
    runtime, who = STATE.require(), caller(request)
    split = Split(body.challenger_share, body.control_share, body.salt)
    await THREADS.run(runtime.experiment.set, split, who.key_id)
    return split.as_dict()


def _include_pages() -> None:
    from serving.pages import router

    app.include_router(router)


_include_pages()
