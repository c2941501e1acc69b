"""Where reports read from: the serving database, the online profile store and MLflow."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.store import OnlineStore
from nba.catalogue import Catalogue, default_catalogue
from nba.errors import ConfigError, NbaError
from nba.settings import Settings, get_settings
from serving.db import audit_log, checked_url, open_engine


class ReportError(NbaError, LookupError):
    """A report cannot be built from what was named (unknown run, empty database...)."""


class NotFoundError(ReportError):
    """The request id, run or experiment named does not exist (HTTP 404 when served)."""


def redact(url: str) -> str:
    """A database URL without its password."""
    return sa.make_url(url).render_as_string(hide_password=True)


@dataclass
class Sources:
    """The stores a report reads; ``models`` is the service's model set when one is at hand."""

    engine: Engine
    tracking_uri: str
    database_label: str
    catalogue: Catalogue = field(default_factory=default_catalogue)
    profiles: OnlineStore | None = None
    models: Any = None
    """A `serving.models.ModelSet`; built on first use (versions load on demand) when None."""

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Sources:
        """The stores of ``NBA_DATABASE_URL`` and ``NBA_MLFLOW_TRACKING_URI``; the database must exist."""
        settings = settings or get_settings()
        url = checked_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and not Path(str(url.database)).is_file():
            raise ConfigError(
                f"the database {redact(settings.database_url)} (NBA_DATABASE_URL) does not exist; "
                "point NBA_DATABASE_URL at the service's database"
            )
        return cls(
            engine=open_engine(settings.database_url),
            tracking_uri=settings.mlflow_tracking_uri,
            database_label=redact(settings.database_url),
            profiles=OnlineStore.from_url(settings.database_url),
        )

    def model_set(self) -> Any:
        """The service's model set, or one that loads registered versions on demand."""
        if self.models is None:
            from serving.models import ModelSet, mlflow_client

            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

            client = mlflow_client(self.tracking_uri)
            self.models = ModelSet({}, {}, {}, client=client, catalogue=self.catalogue)
        return self.models

    def decisions(self) -> int:
        """How many decisions the audit log holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one())

    def require_decisions(self) -> int:
        """The number of decisions; raises ReportError naming the database when there are none."""
        count = self.decisions()
        if count == 0:
            raise ReportError(
                f"the audit log of {self.database_label} holds no decision: nothing to report yet "
                "(is NBA_DATABASE_URL the service's database?)"
            )
        return count

    def close(self) -> None:
        if self.profiles is not None:
            self.profiles.close()
        self.engine.dispose()
