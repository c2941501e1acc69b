"""The framework's ceiling: a BentoML service configured as `serving.service` that does nothing.

Its `/recommend` validates the same request body (a pydantic model, ``extra="forbid"``), runs
in the same thread pool and answers a recorded response of the real service (the file named by
``NBA_CEILING_BODY``), with no key check, consent, profile, scoring, explanation or audit.
`benchmarks/serving.py` drives it as it drives the real service: its throughput is what
BentoML, uvicorn and the load generator leave of the machine, the most any service built on
them could reach here.

    bentoml serve benchmarks.ceiling_service:Ceiling --port 3001
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bentoml
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from serving.auth import service_options

BODY: dict[str, Any] = json.loads(Path(os.environ["NBA_CEILING_BODY"]).read_text())
app = FastAPI()


class Ask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: int = Field(ge=1)
    channel: str
    max_items: int = Field(3, ge=1, le=10)
    language: str = "fr"


@app.post("/recommend")
def recommend(ask: Ask) -> dict[str, Any]:
    return BODY


@bentoml.service(name="ceiling", **service_options())
@bentoml.asgi_app(app, path="/")
class Ceiling:
    """Answers a fixed body: BentoML's own cost per request."""
