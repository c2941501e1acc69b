"""The BentoML service: `bentoml serve serving.service:NextBestAction` (or `nba serve`).

The routes live in a FastAPI app mounted at the root (`serving.app`), which keeps FastAPI's
422 for invalid bodies and puts the routes in BentoML's OpenAPI page (`/docs`). BentoML
serves `/healthz`, `/livez`, `/readyz` (from `__is_ready__`) and `/metrics` itself.
"""

from __future__ import annotations

import os

# One OpenMP thread per worker, set before LightGBM loads: a request scores one row, and idle
# OpenMP threads spinning against the other requests' threads cost 10-50 ms per prediction on a
# busy 2-core machine (measured), against 0.05 ms with one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import logging

import bentoml

from serving.app import STATE, app
from serving.auth import AuthMiddleware

log = logging.getLogger("nba.serving")


@bentoml.service(
    name="nba",
    workers=int(os.environ.get("NBA_WORKERS", "1")),
    threads=int(os.environ.get("NBA_THREADS", "4")),
    traffic={"timeout": 5},
)
@bentoml.asgi_app(app, path="/")
class NextBestAction:
    """Consent-gated next best actions for the members of a mutual health insurer."""

    def __init__(self) -> None:
        STATE.start()

    def __is_ready__(self) -> bool:
        problems = STATE.problems()
        for problem in problems:
            log.warning("not ready: %s", problem)
        return not problems


NextBestAction.add_asgi_middleware(AuthMiddleware)  # type: ignore[attr-defined]
