"""API keys, on SQLite and PostgreSQL: shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nba.errors import InvalidField
from serving.db import api_keys
from serving.keys import KeyStore, key_id_of


def test_only_the_hash_is_stored(engine: Engine) -> None:
    key = KeyStore(engine).create("compliance")
    assert key.startswith("nba_")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["key_id"] == key_id_of(key)
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert rows[0]["role"] == "compliance" and rows[0]["revoked_at"] is None
    secret = key.split("_", 2)[2]  # the secret itself may hold "_"
    assert not any(secret in str(value) for value in rows[0].values())


def test_a_key_gives_its_role_and_nothing_else_does(engine: Engine) -> None:
    keys = KeyStore(engine)
    app_key, admin_key = keys.create("app"), keys.create("admin")
    assert (keys.role_of(app_key), keys.role_of(admin_key)) == ("app", "admin")
    flipped = app_key[:-1] + ("A" if app_key[-1] != "A" else "B")
    other_id = f"nba_{'0' * 16}_{app_key.split('_', 2)[2]}"
    for wrong in (flipped, other_id, app_key + "x", "", "Bearer " + app_key, app_key.upper()):
        assert keys.role_of(wrong) is None, wrong


def test_a_revoked_key_stops_working(engine: Engine) -> None:
    keys = KeyStore(engine)
    key, kept = keys.create("app"), keys.create("app")
    key_id = key_id_of(key)
    assert key_id is not None
    assert keys.revoke(key_id) is True
    assert keys.revoke(key_id) is False
    assert keys.revoke("0" * 16) is False
    assert (keys.role_of(key), keys.role_of(kept)) == (None, "app")


def test_unknown_role_is_named(engine: Engine) -> None:
    with pytest.raises(InvalidField) as raised:
        KeyStore(engine).create("root")
    assert (raised.value.field, raised.value.received) == ("role", "root")
    assert "['app', 'compliance', 'admin']" in str(raised.value)
