"""The champions' model cards: the ``model_card.md`` each training run logged, read from MLflow."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.sources import Sources

CARD = "model_card.md"  # written by training.tracking.log_action_artifacts
ALIAS = "champion"


@dataclass
class ModelCard:
    action_id: str
    name: str
    version: str | None
    markdown: str | None
    """The card's text, or None when it cannot be read (``problem`` says why)."""
    tags: dict[str, str] = field(default_factory=dict)
    problem: str | None = None

    @property
    def categories(self) -> list[str]:
        return list(json.loads(self.tags.get("feature_categories", "[]")))

    @property
    def n_features(self) -> int:
        return len(json.loads(self.tags.get("features", "[]")))


def champion_cards(sources: Sources) -> list[ModelCard]:
    """One card per catalogue action, in catalogue order; actions without a champion say so."""
    client = sources.model_set().client
    return [_card(client, action.id) for action in sources.catalogue.actions]


def _card(client: Any, action_id: str) -> ModelCard:
    name = f"nba-{action_id}"
    try:
        version = client.get_model_version_by_alias(name, ALIAS)
    except Exception:  # MLflow raises when the model or the alias does not exist
        return ModelCard(action_id, name, None, None, problem=f"no {ALIAS} version registered for {name}")
    tags = {k: v for k, v in dict(version.tags).items() if k not in ("calibration",)}
    card = ModelCard(action_id, name, str(version.version), None, tags)
    if not version.run_id:
        card.problem = f"{name} version {version.version} names no training run"
        return card
    try:
        with tempfile.TemporaryDirectory() as tmp:
            card.markdown = Path(client.download_artifacts(version.run_id, CARD, tmp)).read_text()
    except Exception as exc:  # artifact missing or store unreachable
        card.problem = f"run {version.run_id} has no readable {CARD}: {type(exc).__name__}"
    return card
