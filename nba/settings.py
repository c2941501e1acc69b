"""Settings read from the environment (prefix ``NBA_``), built by a function, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nba.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBA_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///out/nba.db",
        description="SQLAlchemy URL of the online store, consent, audit and feedback tables.",
    )
    mlflow_tracking_uri: str = Field(
        default="sqlite:///mlruns/mlflow.db", description="MLflow tracking and registry store."
    )
    home: Path = Field(default=Path("out"), description="Where commands write their outputs.")

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                f"expected a SQLAlchemy URL starting with sqlite:// or postgresql://; got {value!r}"
            )
        return value


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def get_settings(fresh: bool = False) -> Settings:
    """The settings in force; ``fresh`` re-reads the environment."""
    if fresh:
        _cached.cache_clear()
    try:
        return _cached()
    except ValidationError as exc:
        problems = "; ".join(
            f"NBA_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
