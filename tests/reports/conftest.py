"""A served world with decisions made through the service, for the reports to read.

The `served` world's database is copied first, so a planted violation or a read logged here
never reaches other tests. Half the members are served by the challenger.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nba.settings import Settings
from reports.sources import Sources
from tests.conftest import Served
from tests.features.conftest import postgres_schema_url, postgres_url, store_url
from tests.reports.decisions import Made, copy_sqlite, make_decisions, service

__all__ = ["postgres_schema_url", "postgres_url", "store_url"]


@dataclass
class ReportWorld:
    """The served world plus decisions: its database URL, models and what was done."""

    served: Served
    database_url: str
    made: Made
    models: Any  # the service's serving.models.ModelSet

    @property
    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url, mlflow_tracking_uri=self.served.tracking_uri, challenger_share=0.5
        )

    def sources(self, database_url: str | None = None, tracking_uri: str | None = None) -> Sources:
        update = {"database_url": database_url or self.database_url,
                  "mlflow_tracking_uri": tracking_uri or self.served.tracking_uri}  # fmt: skip
        settings = self.settings.model_copy(update=update)
        sources = Sources.from_settings(settings)
        sources.models = self.models
        return sources


@pytest.fixture(scope="session")
def report_world(served: Served, tmp_path_factory: pytest.TempPathFactory) -> ReportWorld:
    home = tmp_path_factory.mktemp("reports")
    url = copy_sqlite(served.database_url, home / "nba.db")
    settings = Settings(database_url=url, mlflow_tracking_uri=served.tracking_uri, challenger_share=0.5)
    with service(settings) as (client, runtime):
        made = make_decisions(client, runtime, served.keys["app"], members=30)
        models = runtime.models
    return ReportWorld(served, url, made, models)


@pytest.fixture
def sources(report_world: ReportWorld) -> Iterator[Sources]:
    opened = report_world.sources()
    yield opened
    opened.close()


@pytest.fixture
def planted_copy(report_world: ReportWorld, tmp_path: Path) -> str:
    """A copy of the report world's database, for tests that add to it."""
    return copy_sqlite(report_world.database_url, tmp_path / "copy.db")
