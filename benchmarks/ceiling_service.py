"""The framework's ceiling: a BentoML service configured as `serving.service` that does nothing.

Its `/recommend` validates the same request body (a pydantic model, ``extra="forbid"``), hands
the work to the same thread pool and answers, as the real route does, already-serialised JSON: a
recorded response of the real service (the file named by ``NBA_CEILING_BODY``), with no key
check, consent, profile, scoring, explanation or audit.
`benchmarks/serving.py` drives it as it drives the real service: its throughput is what
BentoML, uvicorn and the load generator leave of the machine, the most any service built on
them could reach here.

    bentoml serve benchmarks.ceiling_service:Ceiling --port 3001
"""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from serving.auth import service_options
from serving.sockets import share_connections_between_workers

share_connections_between_workers()  # as serving.service does

BODY = Path(os.environ["NBA_CEILING_BODY"]).read_text()
app = FastAPI()


class Ask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: int = Field(ge=1)
    channel: str
    max_items: int = Field(3, ge=1, le=10)
    language: str = "fr"


def decide(member_id: int) -> str:
    return BODY


@app.post("/recommend")
async def recommend(ask: Ask) -> Response:
    """The real route's shape: the decision in the thread pool, a JSON string sent back as it is."""
    return Response(await run_in_threadpool(decide, ask.member_id), media_type="application/json")


@bentoml.service(name="ceiling", **service_options())
@bentoml.asgi_app(app, path="/")
class Ceiling:
    """Answers a fixed body: BentoML's own cost per request."""
