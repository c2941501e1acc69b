"""What members did with the actions a recommendation returned: shown, clicked, accepted, dismissed.

The contact policy reads it back (:meth:`FeedbackStore.recent`): offers shown lately, actions
dismissed lately.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Set
from typing import NamedTuple

from sqlalchemy.engine import Engine

from nba import vocab
from nba.errors import InvalidField
from serving.db import as_utc, feedback_events, reader_for, utcnow, writing

ID_MAX = 200


class Feedback(NamedTuple):
    """One feedback event: ``(action_id, event, at)``."""

    action_id: str
    event: str
    at: dt.datetime


class FeedbackStore:
    """Append feedback on returned actions; read a member's recent feedback."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = reader_for(engine)
        self._recent_sql = self._reader.sql(
            "SELECT action_id, event, at FROM feedback_events WHERE member_id = ? AND at >= ? "
            "ORDER BY at, feedback_id"
        )

    def append(
        self,
        request_id: str,
        action_id: str,
        event: str,
        *,
        returned_actions: Set[str],
        member_id: int,
        now: dt.datetime | None = None,
    ) -> Feedback:
        """Record ``event`` on ``action_id``, which request ``request_id`` must have returned."""
        if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > ID_MAX:
            raise InvalidField("request_id", f"a non-empty string of at most {ID_MAX} characters", request_id)
        if event not in vocab.FEEDBACK_EVENTS:
            raise InvalidField("event", vocab.FEEDBACK_EVENTS, event)
        if action_id not in returned_actions:
            returned = sorted(returned_actions)
            expected = (
                f"an action request {request_id} returned: one of {returned}"
                if returned
                else (f"absent: request {request_id} returned no action")
            )
            raise InvalidField("action_id", expected, action_id)
        at = utcnow() if now is None else now.astimezone(dt.UTC)
        row = {"request_id": request_id, "member_id": operator.index(member_id), "action_id": action_id}
        with writing(self.engine) as conn:
            conn.execute(feedback_events.insert().values(**row, event=event, at=at))
        return Feedback(action_id, event, at)

    def recent(self, member_id: int, since: dt.datetime) -> list[Feedback]:
        """The member's feedback at or after ``since``, oldest first (read on every ``/recommend``,
        so straight through the driver)."""
        params = (operator.index(member_id), self._reader.time_param(since))
        return [Feedback(a, e, as_utc(at)) for a, e, at in self._reader.fetch(self._recent_sql, params)]
