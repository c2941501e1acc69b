"""The four proofs of COMPLIANCE.md ("Provable by a query"), each a query and a count that must be 0.

1. no ``offers`` action was returned after the member's objection, withdrawal or
   ``no_other_offers`` took effect;
2. no ``health_claims`` feature fed an ``offers`` decision unless ``offers_health_data`` consent
   was in force;
3. which consent events applied to any decision (the count: decisions whose consent trace is
   missing or cites events the registry does not hold for that member);
4. any decision can be replayed with the same model and inputs to the same scores (a sample).

Consent is read as `serving.consent` reads it, but independently of its code: per member,
purpose and ``channel = 'all'``, the event in force at the decision is the one captured last
among those effective by then (ties: the higher event id), unless it has expired.
Proofs 2 and 4 need the model registry: SQL selects the rows inspected, Python finishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from features import registry
from nba import vocab
from reports.sources import Sources
from reports.sql import Sql, run
from serving.audit import AuditLog

REFUSALS = ("objected", "withdrawn", "no_other_offers")
COMMERCIAL = vocab.COMMERCIAL_PURPOSES
EXAMPLES = 10
REPLAY_SAMPLE = 50


@dataclass
class Proof:
    """One claim, the query that checks it, and how many rows break it (0 is proven)."""

    key: str
    title: str
    claim: str
    query: str
    unit: str
    count: int | None = None
    columns: list[str] = field(default_factory=list)
    examples: list[list[Any]] = field(default_factory=list)
    method: str = ""
    """How the rows of the query become the count, when Python finishes the work."""
    inspected: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.count == 0


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def latest_event_cte(sql: Sql, source: str, purposes: str) -> str:
    """Per row of ``source`` (request_id, action_id, member_id, decided_at), its purpose-level
    consent events effective by then, newest capture first per purpose (``n = 1``: the one in force)."""
    return f"""latest AS (
  SELECT s.request_id, s.action_id, s.decided_at, e.event_id, e.purpose, e.decision, e.expires_at,
         row_number() OVER (PARTITION BY s.request_id, s.action_id, e.purpose
                            ORDER BY e.captured_at DESC, e.event_id DESC) AS n
  FROM {source} s
  JOIN consent_events e
    ON e.member_id = s.member_id AND e.channel = 'all'
   AND e.purpose IN ({purposes})
   AND e.effective_from <= s.decided_at
)"""


def offers_after_refusal_query(sql: Sql) -> str:
    """Proof 1: returned offers whose consent state in force was a refusal."""
    return f"""WITH returned_offers AS (
  SELECT a.request_id, a.member_id, {sql.decided_at()} AS decided_at,
         {sql.val("c", "action_id")} AS action_id, {sql.val("c", "purpose")} AS purpose
  FROM audit_log a
  {sql.each("a.record", "candidates", "c")}
  WHERE {sql.val("c", "status")} = 'returned' AND {sql.val("c", "purpose")} IN ({_in(COMMERCIAL)})
),
{latest_event_cte(sql, "returned_offers", "'offers', s.purpose")}
SELECT request_id, action_id, purpose, event_id, decision, decided_at
FROM latest
WHERE n = 1 AND decision IN ({_in(REFUSALS)})
  AND (expires_at IS NULL OR expires_at > decided_at)
ORDER BY request_id, action_id"""


def scored_offers_query(sql: Sql) -> str:
    """Proof 2: offer candidates scored by a model while no offers_health_data grant was in force."""
    return f"""WITH scored_offers AS (
  SELECT a.request_id, a.member_id, {sql.decided_at()} AS decided_at,
         {sql.val("c", "action_id")} AS action_id,
         {sql.val("c", "model.name")} AS model_name, {sql.val("c", "model.version")} AS model_version
  FROM audit_log a
  {sql.each("a.record", "candidates", "c")}
  WHERE {sql.val("c", "purpose")} IN ({_in(COMMERCIAL)}) AND {sql.val("c", "score")} IS NOT NULL
),
{latest_event_cte(sql, "scored_offers", "'offers_health_data'")}
SELECT s.request_id, s.action_id, s.model_name, s.model_version
FROM scored_offers s
LEFT JOIN latest l ON l.request_id = s.request_id AND l.action_id = s.action_id AND l.n = 1
WHERE NOT (l.decision IS NOT NULL AND l.decision = 'granted'
           AND (l.expires_at IS NULL OR l.expires_at > s.decided_at))
ORDER BY s.request_id, s.action_id"""


def consent_trace_query(sql: Sql) -> str:
    """Proof 3: decisions whose consent trace is missing, incomplete or cites unknown events."""
    purposes = _in(vocab.PURPOSES)
    return f"""WITH verdicts AS (
  SELECT a.request_id, a.member_id, p.key AS purpose, p.value AS verdict
  FROM audit_log a
  {sql.items("a.record", "consent", "p")}
),
cited AS (
  SELECT v.request_id, v.member_id, {sql.scalar("u")} AS event_id
  FROM verdicts v
  {sql.each("v.verdict", "events_used", "u")}
),
recorded AS (
  SELECT a.request_id, {sql.int_val("r", "event_id")} AS event_id
  FROM audit_log a
  {sql.each("a.record", "consent_events", "r")}
)
SELECT a.request_id, 'no verdict for every purpose' AS problem
FROM audit_log a
WHERE (SELECT count(*) FROM verdicts v
       WHERE v.request_id = a.request_id AND v.purpose IN ({purposes})) < {len(vocab.PURPOSES)}
UNION
SELECT v.request_id, 'consent-based purpose allowed without citing its grant'
FROM verdicts v
WHERE v.purpose IN ({_in(vocab.CONSENT_BASED_PURPOSES)})
  AND {sql.field("v.verdict", "allowed")} = {sql.true()}
  AND {sql.length("v.verdict", "events_used")} = 0
UNION
SELECT c.request_id, 'cites an event the registry does not hold for the member'
FROM cited c
LEFT JOIN consent_events e ON e.event_id = c.event_id AND e.member_id = c.member_id
WHERE e.event_id IS NULL
UNION
SELECT c.request_id, 'cites an event its record does not copy'
FROM cited c
WHERE NOT EXISTS (SELECT 1 FROM recorded r
                  WHERE r.request_id = c.request_id AND r.event_id = c.event_id)
ORDER BY 1, 2"""


def consent_events_of_query(sql: Sql) -> str:
    """The consent events that applied to one decision (``:request_id``), from the registry."""
    return f"""SELECT e.event_id, e.purpose, e.channel, e.decision, e.notice_version, e.source,
       e.captured_at, e.effective_from, e.expires_at
FROM audit_log a
{sql.each("a.record", "consent_events", "r")}
JOIN consent_events e ON e.event_id = {sql.int_val("r", "event_id")} AND e.member_id = a.member_id
WHERE a.request_id = :request_id
ORDER BY e.captured_at, e.event_id"""


def replay_sample_query() -> str:
    return """SELECT request_id, record
FROM audit_log
WHERE (seq - 1) % :step = 0
ORDER BY seq"""


TITLES: dict[str, tuple[str, str, str]] = {
    "1": (
        "No offer after an objection, a withdrawal or “no other offers”",
        "No offers action was returned after the member's objection, withdrawal or no_other_offers "
        "took effect (the purpose-level event in force at the decision time).",
        "returned offers",
    ),
    "2": (
        "No health data in an offer without explicit consent",
        "No health_claims feature fed an offers decision unless offers_health_data consent was in "
        "force: every offer candidate scored without that consent used a model whose features are "
        "all outside health_claims.",
        "scored offers",
    ),
    "3": (
        "Every decision names the consent events that applied",
        "Each decision records a verdict for every purpose; an allowed consent-based purpose cites "
        "its grant; every event cited is copied in the record and held by the consent registry for "
        "that member. The second query lists the events of one decision.",
        "decisions",
    ),
    "4": (
        "Decisions replay to the same scores",
        "A logged decision recomputed from its recorded feature values with its recorded model "
        "versions gives identical scores and ranking.",
        "decisions replayed",
    ),
}


def _finish(proof: Proof, rows: list[Any], columns: list[str]) -> None:
    proof.count = len(rows)
    proof.columns = columns
    proof.examples = [[str(v) for v in row] for row in rows[:EXAMPLES]]


def offers_after_refusal(sources: Sources, proof: Proof) -> None:
    proof.query = offers_after_refusal_query(Sql.of(sources.engine))
    rows = run(sources.engine, proof.query)
    _finish(proof, rows, ["request_id", "action_id", "purpose", "event_id", "decision", "decided_at"])


def health_data(sources: Sources, proof: Proof) -> None:
    proof.query = scored_offers_query(Sql.of(sources.engine))
    proof.method = (
        "The query lists every offer candidate scored while no offers_health_data grant was in "
        "force. For each, the model version's recorded features (registry tags `features` and "
        "`feature_categories`, and the features of its explanation when it was returned) are "
        "mapped to their data categories; a row counts when one is health_claims, or when the "
        "model version cannot be read."
    )
    rows = run(sources.engine, proof.query)
    proof.inspected = len(rows)
    categories = _ModelCategories(sources)
    explained = _returned_features(sources, {r.request_id for r in rows})
    bad = []
    for row in rows:
        found = categories.of(row.model_name, row.model_version)
        used = (found or set()) | {_category(f) for f in explained.get((row.request_id, row.action_id), ())}
        if found is None or "health_claims" in used:
            why = "model version not in the registry" if found is None else "uses health_claims"
            bad.append((row.request_id, row.action_id, row.model_name, row.model_version, why))
    _finish(proof, bad, ["request_id", "action_id", "model", "version", "why"])


def _category(feature: str) -> str:
    known = registry.BY_NAME.get(feature)
    return known.category if known else "health_claims"  # unknown: cannot be proven harmless


class _ModelCategories:
    """The data categories of a registered model version's features (None if it cannot be read)."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.cache: dict[tuple[str, str], set[str] | None] = {}

    def of(self, name: str, version: object) -> set[str] | None:
        key = (name, str(version))
        if key not in self.cache:
            self.cache[key] = self._read(*key)
        return self.cache[key]

    def _read(self, name: str, version: str) -> set[str] | None:
        try:
            record = self.sources.model_set().client.get_model_version(name, version)
        except Exception:  # any registry error means "cannot prove"
            return None
        tags = dict(record.tags)
        if "features" not in tags:
            return None
        used = {_category(f) for f in json.loads(tags["features"])}
        return used | set(json.loads(tags.get("feature_categories", "[]")))


def _returned_features(sources: Sources, request_ids: set[str]) -> dict[tuple[str, str], list[str]]:
    """Features of each returned item's explanation (its factors, and the contributions records
    written before contributions were derived on reading), for the given decisions."""
    log = AuditLog(sources.engine)
    out: dict[tuple[str, str], list[str]] = {}
    for request_id in sorted(request_ids):
        record = log.get(request_id) or {}
        for action_id, explanation in (record.get("explanations") or {}).items():
            shown = [factor.get("feature") for factor in explanation.get("factors") or []]
            written = list((explanation.get("contributions") or {}).keys())  # older records
            out[(request_id, action_id)] = [str(f) for f in shown + written if f]
    return out


def consent_trace(sources: Sources, proof: Proof) -> None:
    sql = Sql.of(sources.engine)
    proof.query = consent_trace_query(sql)
    proof.method = "The events of one decision (:request_id), as the decision page lists them:\n\n" + (
        consent_events_of_query(sql)
    )
    rows = run(sources.engine, proof.query)
    _finish(proof, rows, ["request_id", "problem"])


def replayed(sources: Sources, proof: Proof, sample: int = REPLAY_SAMPLE) -> None:
    from serving.replay import replay

    total = sources.decisions()
    step = max(1, -(-total // max(1, sample)))
    proof.query = replay_sample_query().replace(":step", str(step))
    proof.method = (
        f"A sample of the {total:,} decisions, one in {step} by sequence number, each recomputed by "
        "`serving.replay.replay`; a row counts when the scores or the ranking differ, or when a "
        "recorded model version cannot be loaded."
    )
    rows = run(sources.engine, proof.query)
    proof.inspected = len(rows)
    bad = []
    for row in rows:
        try:
            report = replay(json.loads(row.record), sources.model_set(), sources.catalogue)
        except Exception as exc:  # a model that cannot be loaded cannot be replayed
            bad.append((row.request_id, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
            continue
        if not report.identical:
            why = f"replayed {report.replayed_ranking}, recorded {report.recorded_ranking}"
            bad.append((row.request_id, why))
    _finish(proof, bad, ["request_id", "why"])


def all_proofs(sources: Sources, replay_sample: int = REPLAY_SAMPLE) -> list[Proof]:
    """The four proofs; one that cannot run says why instead of a count (and is not proven)."""
    steps: dict[str, Callable[[Proof], None]] = {
        "1": lambda p: offers_after_refusal(sources, p),
        "2": lambda p: health_data(sources, p),
        "3": lambda p: consent_trace(sources, p),
        "4": lambda p: replayed(sources, p, replay_sample),
    }
    out = []
    for key, step in steps.items():
        title, claim, unit = TITLES[key]
        proof = Proof(key, title, claim, "", unit)
        try:
            step(proof)
        except Exception as exc:  # shown in red on the page, never hidden
            proof.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        out.append(proof)
    return out
