"""Online experiment settings: who gets the challenger, who is in the control group.

Members are split by a salted hash of their id, so a member keeps their variant from one request
to the next: the first ``control_share`` of the hash range is the control group (no commercial
offers at all, to measure what offers add), the next ``challenger_share`` is served by the
challenger models, the rest by the champions. The split is stored in the database (history kept,
latest wins) and every worker re-reads it within ``NBA_EXPERIMENT_REFRESH_SECONDS``, so it
changes without a restart; until someone sets it, the ``NBA_`` settings give it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nba.errors import InvalidField
from nba.settings import Settings
from serving.db import experiment_settings, utcnow, writing

CHAMPION, CHALLENGER, CONTROL = "champion", "challenger", "control"
VARIANTS = (CHAMPION, CHALLENGER, CONTROL)


@dataclass(frozen=True)
class Split:
    challenger_share: float
    control_share: float
    salt: str

    def __post_init__(self) -> None:
        for name in ("challenger_share", "control_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidField(name, "a share between 0 and 1", value)
        if self.challenger_share + self.control_share > 1:
            raise InvalidField("control_share", "at most 1 - challenger_share", self.control_share)
        if not isinstance(self.salt, str) or not 0 < len(self.salt) <= 64:
            raise InvalidField("salt", "a string of 1 to 64 characters", self.salt)

    def variant(self, member_id: int) -> str:
        digest = hashlib.sha256(f"{self.salt}:{member_id}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        if position < self.control_share:
            return CONTROL
        if position < self.control_share + self.challenger_share:
            return CHALLENGER
        return CHAMPION

    def as_dict(self) -> dict[str, object]:
        return {
            "challenger_share": self.challenger_share,
            "control_share": self.control_share,
            "salt": self.salt,
        }


class Experiment:
    """The split in force, re-read from the database at most every ``refresh`` seconds."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.default = Split(settings.challenger_share, settings.control_share, settings.variant_salt)
        self.refresh = settings.experiment_refresh_seconds
        self._current, self._read_at = self.default, float("-inf")
        self._lock = threading.Lock()

    def current(self) -> Split:
        if time.monotonic() - self._read_at >= self.refresh:
            with self._lock:
                self._current, self._read_at = self._read() or self.default, time.monotonic()
        return self._current

    def set(self, split: Split, actor: str) -> Split:
        with writing(self.engine) as conn:
            conn.execute(experiment_settings.insert().values(**split.as_dict(), actor=actor, set_at=utcnow()))
        with self._lock:
            self._current, self._read_at = split, time.monotonic()
        return split

    def _read(self) -> Split | None:
        table = experiment_settings
        query = (
            sa.select(table.c.challenger_share, table.c.control_share, table.c.salt)
            .order_by(table.c.setting_id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Split(float(row[0]), float(row[1]), str(row[2]))
