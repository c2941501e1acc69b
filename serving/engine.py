"""The serving runtime: stores, models and policy behind the HTTP routes.

Plain library code (no HTTP here): `Runtime.recommend` runs the decision of the serving issue
end to end and writes its audit record before anything is returned; `replay` recomputes a
recorded decision. The routes in `serving.app` are thin wrappers around these methods.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import text

from features.store import OnlineStore
from nba import vocab
from nba.catalogue import Catalogue, default_catalogue
from nba.errors import NbaError
from nba.settings import Settings, get_settings
from serving import decision, explain, replay
from serving.audit import AuditLog, GroupCommitter
from serving.consent import ConsentStore, check
from serving.db import Checkpointer, open_engine
from serving.experiment import Experiment
from serving.feedback import FeedbackStore
from serving.keys import KeyStore
from serving.models import ModelSet, ModelsUnavailableError, feature_vector, load_models

log = logging.getLogger("nba.serving")
RETRY_MODELS_SECONDS = 10.0


@lru_cache(maxsize=1)
def metrics() -> dict[str, Any]:
    """Prometheus counters, created on first use (after BentoML set up its multiprocess dir)."""
    from prometheus_client import Counter

    return {
        "decisions": Counter(
            "nba_decisions", "Decisions made, by variant and outcome.", ["variant", "outcome"]
        ),
        "returned": Counter(
            "nba_items_returned", "Actions returned, by action and kind.", ["action_id", "kind"]
        ),
        "suppressed": Counter("nba_items_suppressed", "Actions held back, by reason code.", ["reason"]),
    }


def count(decided: list[decision.Candidate], variant: str, outcome: str) -> None:
    """One decision in the counters: one increment per label set, not one per candidate (each
    increment writes a shared-memory file in BentoML's multiprocess mode)."""
    m = metrics()
    m["decisions"].labels(variant, outcome).inc()
    returned = Counter((c.action.id, c.action.kind) for c in decided if c.status == decision.RETURNED)
    suppressed = Counter(c.reason or "" for c in decided if c.status != decision.RETURNED)
    for labels, n in returned.items():
        m["returned"].labels(*labels).inc(n)
    for reason, n in suppressed.items():
        m["suppressed"].labels(reason).inc(n)


class NotFoundError(NbaError):
    """The member or request is unknown (HTTP 404)."""


class UnavailableError(NbaError):
    """The service cannot answer safely right now (HTTP 503)."""


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: str


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def policy_from(settings: Settings) -> decision.Policy:
    return decision.Policy(
        max_offers_per_30d=settings.max_offers_per_30d,
        dismiss_cooldown_days=settings.dismiss_cooldown_days,
        levers=dict(settings.levers),
    )


class _ConsentCache:
    """Consent reads reused for at most ``seconds`` (0 disables), dropped on any local write."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[int, tuple[float, list[Any]]] = {}
        self._lock = threading.Lock()

    def get(self, member_id: int) -> list[Any] | None:
        if self.seconds <= 0:
            return None
        with self._lock:
            hit = self._items.get(member_id)
        return hit[1] if hit and time.monotonic() - hit[0] < self.seconds else None

    def put(self, member_id: int, events: list[Any]) -> None:
        if self.seconds > 0:
            with self._lock:
                if len(self._items) > 100_000:
                    self._items.clear()
                self._items[member_id] = (time.monotonic(), events)

    def drop(self, member_id: int) -> None:
        with self._lock:
            self._items.pop(member_id, None)


class Runtime:
    """Everything a request needs, built once per worker."""

    def __init__(self, settings: Settings | None = None, catalogue: Catalogue | None = None) -> None:
        self.settings = settings or get_settings()
        self.catalogue = catalogue or default_catalogue()
        self.policy = policy_from(self.settings)
        # checkpoints off the request path (serving.db.Checkpointer)
        self.engine = open_engine(self.settings.database_url, autocheckpoint=False)
        self.checkpointer = Checkpointer.for_engine(self.engine)
        self.profiles = OnlineStore.from_url(self.settings.database_url)
        self.consent = ConsentStore(self.engine)
        self.audit = AuditLog(self.engine)
        self.audit_writer = GroupCommitter(self.audit)
        self.feedback = FeedbackStore(self.engine)
        self.keys = KeyStore(self.engine)
        self.experiment = Experiment(self.engine, self.settings)
        self.offer_ids = {a.id for a in self.catalogue.actions if a.kind == "offer"}
        self._consent_cache = _ConsentCache(self.settings.consent_cache_seconds)
        self.models: ModelSet | None = None
        self.models_error: str | None = None
        self._models_tried = 0.0
        self._models_lock = threading.Lock()
        self.load_models()

    # -- readiness ---------------------------------------------------------------------------

    def load_models(self) -> bool:
        with self._models_lock:
            self._models_tried = time.monotonic()
            try:
                self.models = load_models(self.settings.mlflow_tracking_uri, self.catalogue)
                self.models_error = None
            except ModelsUnavailableError as exc:
                self.models, self.models_error = None, str(exc)
                log.error("models unavailable: %s", exc)
        return self.models is not None

    def problems(self) -> list[str]:
        """Why the service is not ready (empty when it is)."""
        out = []
        if self.models is None and time.monotonic() - self._models_tried > RETRY_MODELS_SECONDS:
            self.load_models()
        if self.models is None:
            out.append(f"models: {self.models_error}")
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
            if self.profiles.current() is None:
                out.append("profiles: the online store holds no load; run `nba features publish`")
        except Exception as exc:  # any driver error means "not reachable"
            out.append(f"database: {type(exc).__name__}: {exc}".splitlines()[0])
        return out

    def require_models(self) -> ModelSet:
        if self.models is None and time.monotonic() - self._models_tried > RETRY_MODELS_SECONDS:
            self.load_models()
        if self.models is None:
            raise UnavailableError(f"no models loaded, so no recommendation is made: {self.models_error}")
        return self.models

    # -- consent -----------------------------------------------------------------------------

    def consent_events(self, member_id: int) -> list[Any]:
        cached = self._consent_cache.get(member_id)
        if cached is not None:
            return cached
        events = self.consent.events(member_id)
        self._consent_cache.put(member_id, events)
        return events

    def record_consent(self, member_id: int, **fields: Any) -> Any:
        if self.profiles.get(member_id) is None:
            raise NotFoundError(f"member_id {member_id} is not a known member")
        event = self.consent.append(member_id, **fields)
        self._consent_cache.drop(member_id)
        return event

    def verdicts(
        self, member_id: int, channel: str, values: dict[str, Any], now: dt.datetime
    ) -> dict[str, Any]:
        """One verdict per purpose; if consent cannot be read, every purpose is refused."""
        try:
            events = self.consent_events(member_id)
        except Exception as exc:  # fail closed, whatever the driver raised
            log.error("consent store unreadable for member_id=%s: %s", member_id, type(exc).__name__)
            return {p: _Unavailable() for p in vocab.PURPOSES}
        age = values.get("age")
        adult = age is not None and int(age) >= 18
        vulnerable = bool(values.get("vulnerable") or False)
        return {
            p: check(events, p, channel, now, adult=adult, vulnerable=vulnerable) for p in vocab.PURPOSES
        } | {"_events": events}

    # -- the decision ------------------------------------------------------------------------

    def recommend(
        self, member_id: int, channel: str, max_items: int, language: str, caller: Caller
    ) -> dict[str, Any]:
        models = self.require_models()
        profile = self.profiles.get(member_id)
        if profile is None:
            raise NotFoundError(f"member_id {member_id} is not a known member")
        request_id, now = uuid.uuid4().hex, utcnow()
        values = profile.values
        verdicts = self.verdicts(member_id, channel, values, now)
        events = verdicts.pop("_events", [])
        try:
            recent = self.feedback.recent(
                member_id, now - dt.timedelta(days=max(30, self.policy.dismiss_cooldown_days))
            )
        except Exception as exc:
            raise UnavailableError(f"the feedback store cannot be read: {type(exc).__name__}") from exc
        contact = decision.ContactState.from_feedback(
            [decision.Feedback(*item) for item in recent], self.offer_ids, now, self.policy
        )
        split = self.experiment.current()
        variant = split.variant(member_id)
        candidates = decision.gate(self.catalogue, values, verdicts, contact, models, variant, self.policy)
        vector = feature_vector(values)
        returned = decision.score_and_rank(candidates, vector, max_items)
        items = [self._item(c, vector, values, language) for c in returned]
        record = self._record(request_id, now, caller, member_id, channel, max_items, language, variant,
                              profile, verdicts, events, contact, candidates, items)  # fmt: skip
        record["experiment"] = split.as_dict()
        if not returned and any(isinstance(v, _Unavailable) for v in verdicts.values()):
            self._append_audit(record, status=503)
            count(candidates, variant, "unavailable")
            raise UnavailableError("consent cannot be read, so nothing that depends on it is returned")
        self._append_audit(record, status=200)
        count(candidates, variant, "returned" if items else "empty")
        log.info("recommend request_id=%s member_id=%s returned=%d", request_id, member_id, len(items))
        return {
            "request_id": request_id,
            "member_id": member_id,
            "items": [item["response"] for item in items],
            "suppressed": [
                {"action_id": c.action.id, "reason": c.reason}
                for c in candidates
                if c.status != decision.RETURNED
            ],
            "model_versions": {c.action.id: c.model.version for c in candidates if c.model is not None},
            "variant": variant,
            "notice": explain.AUTOMATED_NOTICE[language],
        }

    def _item(
        self, candidate: decision.Candidate, vector: Any, values: dict[str, Any], language: str
    ) -> dict[str, Any]:
        model, action = candidate.model, candidate.action
        assert model is not None and candidate.score is not None
        contributions = model.contributions(vector)
        chosen = explain.factors(action, model.features, contributions, values, language)
        explanation = {
            "text": explain.text(action, chosen, language),
            "factors": [
                {"feature": f.feature, "label": f.label, "value": f.value, "contribution": f.contribution}
                for f in chosen
            ],
        }
        response = {
            "action_id": action.id,
            "kind": action.kind,
            "purpose": action.purpose,
            "rank": candidate.rank,
            "score": round(candidate.score, 6),
            "title": action.title[language],
            "explanation": explanation,
            "arbitration": {
                "propensity": round(candidate.score, 6),
                "value": action.value,
                "lever": candidate.lever,
                "priority": round(candidate.priority or 0.0, 6),
            },
        }
        return {"response": response}

    def _record(
        self,
        request_id: str,
        now: dt.datetime,
        caller: Caller,
        member_id: int,
        channel: str,
        max_items: int,
        language: str,
        variant: str,
        profile: Any,
        verdicts: dict[str, Any],
        events: list[Any],
        contact: decision.ContactState,
        candidates: list[decision.Candidate],
        items: list[dict[str, Any]],
    ) -> dict[str, Any]:
        used_ids = {i for v in verdicts.values() for i in getattr(v, "events_used", ())}
        scored = [c for c in candidates if c.model is not None and c.score is not None]
        features = sorted({f for c in scored for f in c.model.features})  # type: ignore[union-attr]
        return {
            "request_id": request_id,
            "time": now.isoformat(),
            "caller": {"key_id": caller.key_id, "role": caller.role},
            "member_id": member_id,
            "channel": channel,
            "max_items": max_items,
            "language": language,
            "variant": variant,
            "feature_set_version": profile.feature_set_version,
            "profile": {"as_of": profile.as_of.isoformat(), "load_id": profile.load_id},
            "catalogue_version": self.catalogue.version,
            "consent": {
                purpose: {"allowed": v.allowed, "reason": v.reason, "events_used": list(v.events_used)}
                for purpose, v in verdicts.items()
            },
            "consent_events": [_event_dict(e) for e in events if e.event_id in used_ids],
            "contact": contact.as_dict(),
            "features": {name: profile.values.get(name) for name in features},
            "candidates": [c.record() for c in candidates],
            "returned": [item["response"]["action_id"] for item in items],
            # what the member read; every feature's contribution is derived from the features
            # and model versions above when compliance reads the decision (serving.replay)
            "explanations": {
                item["response"]["action_id"]: item["response"]["explanation"] for item in items
            },
        }

    def _append_audit(self, record: dict[str, Any], status: int) -> None:
        record["status"] = status
        try:
            self.audit_writer.append(record)
        except Exception as exc:
            log.error("audit append failed request_id=%s: %s", record["request_id"], type(exc).__name__)
            raise UnavailableError(
                "the decision could not be recorded in the audit log, so it is not returned"
            ) from exc

    # -- feedback and explanations -----------------------------------------------------------

    def record_feedback(self, request_id: str, action_id: str, event: str) -> None:
        record = self.audit.get(request_id)
        if record is None or record.get("status") != 200:
            raise NotFoundError(f"request_id {request_id!r} is not a recommendation this service returned")
        self.feedback.append(
            request_id,
            action_id,
            event,
            returned_actions=set(record["returned"]),
            member_id=record["member_id"],
        )

    def explain(self, request_id: str, caller: Caller) -> dict[str, Any]:
        record = self.audit.get(request_id)
        if record is None:
            raise NotFoundError(f"request_id {request_id!r} has no decision record")
        self.audit.log_read(request_id, caller.key_id, caller.role)
        log.info("explain request_id=%s read by key_id=%s", request_id, caller.key_id)
        try:
            derived = replay.contributions(record, self.require_models())
        except Exception as exc:  # no models, or a recorded version the registry cannot give back
            problem = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.error("explain request_id=%s: contributions not recomputed: %s", request_id, problem)
            return record | {"contributions": {}, "contributions_problem": problem}
        return record | {"contributions": derived}


@dataclass(frozen=True)
class _Unavailable:
    """The verdict when consent cannot be read: deny, with its own reason code."""

    allowed: bool = False
    reason: str = "CONSENT_UNAVAILABLE"
    events_used: tuple[int, ...] = ()


def _event_dict(event: Any) -> dict[str, Any]:
    """A consent event as the audit record keeps it (its fields, datetimes in ISO 8601); ``vars``
    rather than ``dataclasses.asdict``, which deep-copies every value."""
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in vars(event).items()}
