"""Database fixtures of the serving stores: a SQLite file per test, a PostgreSQL schema per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from serving.db import open_engine

# The online store's fixtures: `store_url` runs a test on a SQLite file and on PostgreSQL (marker
# `postgres`, skipped when the server does not answer), each PostgreSQL test in a schema of its own.
from tests.features.conftest import postgres_schema_url, postgres_url, store_url

__all__ = ["engine", "postgres_schema_url", "postgres_url", "store_url"]


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with the serving tables."""
    opened = open_engine(store_url)
    yield opened
    opened.dispose()
