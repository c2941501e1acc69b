"""Feedback on returned actions, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine

from nba.errors import InvalidField
from serving.feedback import Feedback, FeedbackStore

NOW = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
RETURNED = {"eye_exam", "prevoyance"}


def test_feedback_reads_back_for_the_contact_policy(engine: Engine) -> None:
    store = FeedbackStore(engine)
    store.append(
        "r1", "prevoyance", "shown", returned_actions=RETURNED, member_id=7, now=NOW - dt.timedelta(40)
    )
    store.append(
        "r2", "prevoyance", "shown", returned_actions=RETURNED, member_id=7, now=NOW - dt.timedelta(3)
    )
    store.append("r2", "eye_exam", "dismissed", returned_actions=RETURNED, member_id=7, now=NOW)
    store.append("r3", "eye_exam", "clicked", returned_actions=RETURNED, member_id=8, now=NOW)
    recent = store.recent(7, NOW - dt.timedelta(days=30))
    assert recent == [
        Feedback("prevoyance", "shown", NOW - dt.timedelta(3)),
        Feedback("eye_exam", "dismissed", NOW),
    ]
    action_id, event, at = recent[0]
    assert (action_id, event, at.tzinfo) == ("prevoyance", "shown", dt.UTC)


def test_feedback_on_an_action_not_returned_is_refused(engine: Engine) -> None:
    store = FeedbackStore(engine)
    with pytest.raises(InvalidField) as raised:
        store.append("r1", "funeral_cover", "accepted", returned_actions=RETURNED, member_id=7)
    error = raised.value
    assert (error.field, error.received) == ("action_id", "funeral_cover")
    assert "['eye_exam', 'prevoyance']" in str(error)
    with pytest.raises(InvalidField, match="returned no action"):
        store.append("r1", "eye_exam", "shown", returned_actions=set(), member_id=7)
    assert store.recent(7, NOW - dt.timedelta(days=3650)) == []


def test_unknown_feedback_event_is_named(engine: Engine) -> None:
    with pytest.raises(InvalidField) as raised:
        FeedbackStore(engine).append("r1", "eye_exam", "liked", returned_actions=RETURNED, member_id=7)
    assert raised.value.field == "event"
    assert "['shown', 'clicked', 'accepted', 'dismissed']" in str(raised.value)


def test_the_window_starts_at_since_to_the_microsecond(engine: Engine) -> None:
    """The read binds ``since`` on the driver as SQLAlchemy stores times (text on SQLite): an event
    at ``since`` is in, one a microsecond before is out, whatever the offset ``since`` is given in."""
    store = FeedbackStore(engine)
    since = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)  # no microseconds: the text still has them
    before = since - dt.timedelta(microseconds=1)
    for request_id, at in (("r1", before), ("r2", since)):
        store.append(request_id, "eye_exam", "shown", returned_actions=RETURNED, member_id=7, now=at)
    paris = dt.timezone(dt.timedelta(hours=2))
    assert [f.at for f in store.recent(7, since.astimezone(paris))] == [since]
    assert [f.at for f in store.recent(7, before)] == [before, since]
