"""The BentoML service: `bentoml serve serving.service:NextBestAction` (or `nba serve`).

The routes live in a FastAPI app mounted at the root (`serving.app`), which keeps FastAPI's
422 for invalid bodies and puts the routes in BentoML's OpenAPI page (`/docs`). BentoML
serves `/healthz`, `/livez`, `/readyz` (from `__is_ready__`) and `/metrics` itself.

The hot routes (`HOT_PATHS`: every app request) skip two BentoML features that cost CPU on each
request and give the product nothing there (measured on the 2-core machine,
`benchmarks/serving.py`): the OpenTelemetry span, which is never sampled nor exported unless
tracing is configured (about 0.5 ms per request), and the access-log line (about 0.15 ms).
Prometheus (`bentoml_service_request_*`: count, status and latency per route; `nba_*`) and the
audit log keep the record of those requests; refused or failed ones (status 400 and above) are
still logged, by `serving.auth.AuthMiddleware`. To trace or log them again, override
`services.nba.tracing.excluded_urls` or `services.nba.logging.access.skip_paths` in
`BENTOML_CONFIG_OPTIONS`.
"""

from __future__ import annotations

import os

# One OpenMP thread per worker, set before LightGBM loads: a request scores one row, and idle
# OpenMP threads spinning against the other requests' threads cost 10-50 ms per prediction on a
# busy 2-core machine (measured), against 0.05 ms with one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gc
import logging
import sys

import bentoml

from serving.app import STATE, app
from serving.auth import AuthMiddleware, service_options
from serving.sockets import share_connections_between_workers

log = logging.getLogger("nba.serving")


share_connections_between_workers()


@bentoml.service(name="nba", **service_options())
@bentoml.asgi_app(app, path="/")
class NextBestAction:
    """Consent-gated next best actions for the members of a mutual health insurer."""

    def __init__(self) -> None:
        STATE.start()
        # Everything loaded so far (libraries, models, catalogue) lives as long as the worker:
        # leave it out of the cyclic garbage collector's full passes, which otherwise walk it
        # every few seconds under load, 0.3-0.5 s each with the whole worker stopped (measured;
        # 0.03-0.1 s once frozen), a p99 of several hundred milliseconds.
        gc.collect()
        gc.freeze()
        # A request passes between the event loop, a pool thread and the audit writer; each
        # hand-over waited for the thread holding the GIL to be forced off it, every 5 ms by
        # default, while the CPUs stood half idle. 1 ms: at concurrency 8, 280 -> 479 requests/s
        # and p50 27 -> 14 ms on the 2-core machine (benchmarks/serving.py, one pair of runs).
        sys.setswitchinterval(0.001)

    def __is_ready__(self) -> bool:
        problems = STATE.problems()
        for problem in problems:
            log.warning("not ready: %s", problem)
        return not problems


NextBestAction.add_asgi_middleware(AuthMiddleware)  # type: ignore[attr-defined]
