"""The HTML report pages, served by the service (issue 6): the same pages as ``nba report ...``.

| route | role | page |
| --- | --- | --- |
| ``GET /reports/compliance`` | compliance | proofs, fairness, the champions' model cards |
| ``GET /reports/decision/{request_id}`` | compliance | one decision; the read is logged like ``/explain`` |
| ``GET /reports/experiments`` | compliance, admin | offline runs and online variants |

Roles are checked by `serving.auth.AuthMiddleware` (``serving.app.ROUTE_ROLES``); each page checks
again and refuses when the middleware did not authenticate the request, so a page left out of
ROUTE_ROLES is never public. Pages are self-contained (scripts inlined, no CDN) and sent with a
Content-Security-Policy that forbids every network fetch, and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from nba.errors import InvalidField, NbaError
from serving.engine import Caller, NotFoundError, UnavailableError

log = logging.getLogger("nba.serving")

PAGE_ROLES: dict[str, frozenset[str]] = {
    "/reports/compliance": frozenset({"compliance"}),
    "/reports/decision/": frozenset({"compliance"}),
    "/reports/experiments": frozenset({"compliance", "admin"}),
}
"""The roles each page needs; a path ending in ``/`` covers every path under it."""
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MAX_NAMES = 10

router = APIRouter(prefix="/reports", tags=["compliance"])


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message, "detail": []}, status_code=status)


def roles_for(path: str) -> frozenset[str]:
    exact = PAGE_ROLES.get(path)
    if exact is not None:
        return exact
    return next(
        (roles for p, roles in PAGE_ROLES.items() if p.endswith("/") and path.startswith(p)), frozenset()
    )


def _caller(request: Request) -> Caller | JSONResponse:
    """The authenticated caller if its role may read this page, else the refusal to send."""
    found = request.scope.get("state", {}).get("caller")
    path = request.url.path
    if not isinstance(found, Caller):
        log.error("page %s reached without authentication: add it to serving.app.ROUTE_ROLES", path)
        return _error(503, "unavailable", f"{path} is not behind the service's role check; refused")
    roles = roles_for(path)
    if found.role not in roles:
        return _error(
            403, "forbidden", f"role {found.role!r} may not read {path}; it needs one of {sorted(roles)}"
        )
    return found


def _sources() -> Any:
    from reports.sources import Sources, redact
    from serving.app import STATE

    runtime = STATE.require()
    return Sources(
        engine=runtime.engine,
        tracking_uri=runtime.settings.mlflow_tracking_uri,
        database_label=redact(runtime.settings.database_url),
        catalogue=runtime.catalogue,
        profiles=runtime.profiles,
        models=runtime.models,
    )


async def _page(request: Request, build: Callable[[Caller, Any], str]) -> Response:
    """Check the caller, build the page in a worker thread, map errors to the API's statuses."""
    from reports.sources import NotFoundError as ReportNotFound
    from reports.sources import ReportError

    who = _caller(request)
    if isinstance(who, JSONResponse):
        return who
    try:
        sources = _sources()
        page = await run_in_threadpool(build, who, sources)
    except (NotFoundError, ReportNotFound) as exc:
        return _error(404, "not_found", str(exc))
    except UnavailableError as exc:
        return _error(503, "unavailable", str(exc))
    except (InvalidField, ReportError) as exc:
        return _error(422, "invalid_request", str(exc))
    except NbaError as exc:
        log.error("report page refused: %s", exc)
        return _error(400, "bad_request", str(exc))
    return HTMLResponse(page, headers=HEADERS)


@router.get("/compliance", response_class=HTMLResponse)
async def compliance_page(
    request: Request,
    replay_sample: Annotated[int, Query(ge=1, le=500, description="Decisions replayed for proof 4.")] = 20,
) -> Response:
    """Proofs of COMPLIANCE.md with their queries and counts, fairness, model cards (role compliance)."""
    from reports.compliance import compliance_report

    return await _page(request, lambda who, sources: compliance_report(sources, replay_sample).html)


@router.get("/decision/{request_id}", response_class=HTMLResponse)
async def decision_page(request: Request, request_id: str) -> Response:
    """One decision as compliance reads it; each read is logged (role compliance)."""
    from reports.decision import decision_page as page
    from serving.audit import AuditLog

    def build(who: Caller, sources: Any) -> str:
        text = page(sources, request_id)
        AuditLog(sources.engine).log_read(request_id, who.key_id, who.role)
        log.info("decision page request_id=%s read by key_id=%s", request_id, who.key_id)
        return text

    return await _page(request, build)


@router.get("/experiments", response_class=HTMLResponse)
async def experiments_page(
    request: Request,
    runs: Annotated[
        list[str] | None, Query(description="MLflow train run ids; the first is the baseline.")
    ] = None,
    experiments: Annotated[
        list[str] | None, Query(description="Experiments: each one's latest train run.")
    ] = None,
    offline: bool = True,
    online: bool = True,
) -> Response:
    """Training runs side by side and online variants with uplift (roles compliance, admin)."""
    from reports.experiments import experiment_report

    names = [*(runs or []), *(experiments or [])]
    if len(names) > MAX_NAMES or any(len(n) > 200 for n in names):
        return _error(422, "invalid_request", f"at most {MAX_NAMES} runs and experiments of 200 characters")
    return await _page(
        request, lambda who, sources: experiment_report(sources, runs, experiments, offline, online).html
    )
