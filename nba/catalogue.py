"""The action catalogue: versioned data (``catalogue.json``), loaded and checked here.

Each action has an id, a kind, one purpose, an eligibility rule, a "relevant when" rule
(what the insurer's rules alone would say, used as a baseline), a label definition, a
business value and member-facing texts in French and English.

Rules are lists of conditions ``[feature, operator, value]`` that must all hold, with
``["any", [...]]`` and ``["all", [...]]`` to nest. A missing value makes a comparison
false, except for ``months_since_*`` features, where missing means "never", that is,
infinitely long ago. Training evaluates a rule over a whole table (:func:`evaluate`), serving
over one profile (:func:`holds`, plain Python: numpy on one-element arrays cost a third of a
millisecond per request); a test checks that both give the same answer for every action, on
profiles on, beside and far from each threshold and with missing values, so a rule cannot
mean two things.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nba import vocab
from nba.errors import ConfigError

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
KINDS = ("prevention", "offer")
LANGUAGES = ("fr", "en")
Getter = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class Action:
    id: str
    kind: str
    purpose: str
    value: float
    eligible: tuple[Any, ...]
    relevant: tuple[Any, ...]
    label: Mapping[str, Any]
    source: str
    title: Mapping[str, str]
    description: Mapping[str, str]

    def is_eligible(self, get: Getter) -> np.ndarray:
        return evaluate(self.eligible, get)

    def is_relevant(self, get: Getter) -> np.ndarray:
        return evaluate(self.eligible, get) & evaluate(self.relevant, get)

    def eligible_for(self, values: Mapping[str, Any]) -> bool:
        """``is_eligible`` for one profile (a dict of feature values)."""
        return holds(self.eligible, values)

    def relevant_for(self, values: Mapping[str, Any]) -> bool:
        """``is_relevant`` for one profile (a dict of feature values)."""
        return holds(self.eligible, values) and holds(self.relevant, values)


@dataclass(frozen=True)
class Catalogue:
    version: str
    effective_from: str
    actions: tuple[Action, ...]

    def __getitem__(self, action_id: str) -> Action:
        for action in self.actions:
            if action.id == action_id:
                return action
        raise KeyError(f"unknown action {action_id!r}; the catalogue has {[a.id for a in self.actions]}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.actions)


def evaluate(rule: tuple[Any, ...] | list[Any], get: Getter) -> np.ndarray:
    """All conditions of ``rule`` hold (an empty rule always holds)."""
    result: np.ndarray | None = None
    for condition in rule:
        mask = _condition(condition, get)
        result = mask if result is None else result & mask
    return result if result is not None else np.ones_like(get("age"), dtype=bool)


def _condition(condition: list[Any], get: Getter) -> np.ndarray:
    head = condition[0]
    if head in ("any", "all"):
        masks = [_condition(c, get) for c in condition[1]]
        return np.logical_or.reduce(masks) if head == "any" else np.logical_and.reduce(masks)
    feature, op, value = condition
    column = np.asarray(get(feature), dtype=float)
    missing = np.isnan(column)
    if feature.startswith("months_since_"):
        column = np.where(missing, np.inf, column)
        missing = np.zeros_like(missing)
    return np.asarray(OPERATORS[op](column, float(value)), dtype=bool) & ~missing


def holds(rule: tuple[Any, ...] | list[Any], values: Mapping[str, Any]) -> bool:
    """``evaluate`` for one profile: all conditions of ``rule`` hold (an empty rule always does)."""
    return all(_holds(condition, values) for condition in rule)


def _holds(condition: list[Any], values: Mapping[str, Any]) -> bool:
    head = condition[0]
    if head in ("any", "all"):
        found = (_holds(c, values) for c in condition[1])
        return any(found) if head == "any" else all(found)
    feature, op, value = condition
    raw = values.get(feature)
    number = math.nan if raw is None else float(raw)
    if math.isnan(number):
        if not feature.startswith("months_since_"):
            return False  # a missing value fails a comparison
        number = math.inf  # "never" is infinitely long ago
    return bool(OPERATORS[op](number, float(value)))


def frame_getter(frame: Any) -> Getter:
    """Read rule features from a pandas DataFrame (missing values as NaN)."""
    return lambda name: frame[name].astype("float64").to_numpy(na_value=np.nan)


def load_catalogue(path: Path | None = None, features: set[str] | None = None) -> Catalogue:
    """Load and check the catalogue; errors name the action, the field, expected and got."""
    if path is None:
        text = resources.files("nba").joinpath("catalogue.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"catalogue {path or 'nba/catalogue.json'} is not valid JSON: {exc}") from None
    if features is None:
        from features.registry import BY_NAME

        features = set(BY_NAME)
    actions = tuple(_action(item, features) for item in raw.get("actions", []))
    ids = [a.id for a in actions]
    if sorted(ids) != sorted(vocab.ACTION_IDS):
        raise ConfigError(f"catalogue actions must be exactly {sorted(vocab.ACTION_IDS)}; got {sorted(ids)}")
    return Catalogue(version=str(raw["version"]), effective_from=str(raw["effective_from"]), actions=actions)


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    return load_catalogue()


def _action(item: Mapping[str, Any], features: set[str]) -> Action:
    action_id = item.get("id", "<no id>")

    def bad(field: str, expected: str, got: object) -> ConfigError:
        return ConfigError(f"catalogue action {action_id!r}: {field} must be {expected}; got {got!r}")

    if item.get("kind") not in KINDS:
        raise bad("kind", f"one of {list(KINDS)}", item.get("kind"))
    if item.get("purpose") not in vocab.PURPOSES:
        raise bad("purpose", f"one of {list(vocab.PURPOSES)}", item.get("purpose"))
    if vocab.ACTION_PURPOSES.get(action_id) != item["purpose"]:
        raise bad("purpose", f"{vocab.ACTION_PURPOSES.get(action_id)!r} (nba.vocab)", item["purpose"])
    for field in ("title", "description"):
        texts = item.get(field) or {}
        for language in LANGUAGES:
            if not str(texts.get(language, "")).strip():
                raise bad(f"{field}.{language}", "a non-empty text", texts.get(language))
    if not isinstance(item.get("value"), int | float) or item["value"] <= 0:
        raise bad("value", "a positive number", item.get("value"))
    for field in ("eligible", "relevant"):

        def bad_rule(what: str, got: object, f: str = field) -> ConfigError:
            return bad(f, what, got)

        _check_rule(item.get(field), features, bad_rule)
    return Action(
        id=action_id, kind=item["kind"], purpose=item["purpose"], value=float(item["value"]),
        eligible=tuple(item["eligible"]), relevant=tuple(item["relevant"]), label=item["label"],
        source=str(item.get("source", "")), title=item["title"], description=item["description"],
    )  # fmt: skip


def _check_rule(rule: Any, features: set[str], bad: Callable[[str, object], ConfigError]) -> None:
    if not isinstance(rule, list):
        raise bad("a list of conditions", rule)
    for condition in rule:
        if isinstance(condition, list) and condition and condition[0] in ("any", "all"):
            _check_rule(condition[1] if len(condition) == 2 else None, features, bad)
            continue
        if not (isinstance(condition, list) and len(condition) == 3):
            raise bad("conditions [feature, operator, value]", condition)
        feature, op, _value = condition
        if feature not in features:
            raise bad("conditions on features of the registry", feature)
        if op not in OPERATORS:
            raise bad(f"conditions with an operator among {list(OPERATORS)}", op)
