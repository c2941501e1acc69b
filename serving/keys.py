"""API keys: random, shown once, stored only as their SHA-256, each with one role.

A key reads ``nba_<key id>_<secret>``. The key id (16 hex digits) is not secret: it finds the
stored hash, which is then compared in constant time. A SHA-256 without salt is enough for
keys of 256 random bits (nobody can guess one to test against the hash).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nba import vocab
from nba.errors import InvalidField
from serving.db import api_keys, utcnow, writing

PREFIX: Final = "nba"
KEY_PATTERN: Final = re.compile(r"nba_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


def key_id_of(key: object) -> str | None:
    """The key id embedded in ``key``, or None if ``key`` is not shaped like a key."""
    if not isinstance(key, str):
        return None
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """Create, check and revoke API keys."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, role: str) -> str:
        """A new key with ``role``; the only time the key itself is available."""
        if role not in vocab.ROLES:
            raise InvalidField("role", vocab.ROLES, role)
        key_id = secrets.token_hex(8)
        key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        row = {"key_id": key_id, "key_hash": _digest(key), "role": role, "created_at": utcnow()}
        with writing(self.engine) as conn:
            conn.execute(api_keys.insert().values(**row))
        return key

    def role_of(self, key: str) -> str | None:
        """The role of ``key`` if it is a key this store created and has not revoked, else None."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        query = sa.select(api_keys.c.key_hash, api_keys.c.role).where(
            api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or not hmac.compare_digest(row.key_hash, _digest(key)):
            return None
        return str(row.role)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by its id; False if no live key has that id."""
        revoked = api_keys.update().where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        with writing(self.engine) as conn:
            count = conn.execute(revoked.values(revoked_at=utcnow())).rowcount
        return bool(count)
