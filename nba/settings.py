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

    # -- serving ----------------------------------------------------------------------------
    challenger_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of members served by the challenger models."
    )
    control_share: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Share of members in the control group (no offers)."
    )
    experiment_refresh_seconds: float = Field(
        default=5.0, ge=0.0, le=300.0, description="How often workers re-read the experiment split."
    )
    variant_salt: str = Field(
        default="nba-variant", min_length=1, description="Salt of the member hash that assigns a variant."
    )
    max_offers_per_30d: int = Field(
        default=2, ge=0, description="Contact policy: offers shown to a member per 30 days, at most."
    )
    dismiss_cooldown_days: int = Field(
        default=30, ge=0, description="Contact policy: days a dismissed action is not shown again."
    )
    levers: dict[str, float] = Field(
        default_factory=dict,
        description='Arbitration levers per action id, JSON (e.g. {"prevoyance": 1.2}); default 1.',
    )
    consent_cache_seconds: float = Field(
        default=0.0, ge=0.0, le=60.0, description="How long a member's consent read may be reused (0: never)."
    )
    key_cache_seconds: float = Field(
        default=30.0, ge=0.0, le=300.0, description="How long a verified API key is remembered."
    )
    max_body_bytes: int = Field(default=16_384, ge=256, description="Largest request body accepted.")
    workers: int = Field(default=1, ge=1, le=64, description="Service worker processes.")
    threads: int = Field(
        default=4, ge=1, le=64, description="Requests one service worker computes at once (its threads)."
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                f"expected a SQLAlchemy URL starting with sqlite:// or postgresql://; got {value!r}"
            )
        return value

    @field_validator("levers")
    @classmethod
    def _known_actions(cls, value: dict[str, float]) -> dict[str, float]:
        from nba.vocab import ACTION_IDS

        unknown = sorted(set(value) - set(ACTION_IDS))
        if unknown:
            raise ValueError(f"expected action ids among {list(ACTION_IDS)}; got {unknown}")
        negative = {k: v for k, v in value.items() if v < 0}
        if negative:
            raise ValueError(f"expected levers >= 0; got {negative}")
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
            f"NBA_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}; got {err.get('input')!r}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
