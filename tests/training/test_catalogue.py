"""The action catalogue: versioned data, checked when loaded, one rule evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nba import vocab
from nba.catalogue import default_catalogue, frame_getter, load_catalogue
from nba.errors import ConfigError

SOURCE = Path(__file__).parents[2] / "nba" / "catalogue.json"


def test_the_catalogue_has_every_action_with_its_purpose() -> None:
    catalogue = default_catalogue()
    assert catalogue.version
    assert set(catalogue.ids) == set(vocab.ACTION_IDS)
    assert len([a for a in catalogue.actions if a.kind == "prevention"]) == 9
    assert len([a for a in catalogue.actions if a.kind == "offer"]) == 7
    for action in catalogue.actions:
        assert action.purpose == vocab.ACTION_PURPOSES[action.id]
        assert action.title["fr"] and action.title["en"]


def broken(tmp_path: Path, action_id: str, **changes: object) -> Path:
    raw = json.loads(SOURCE.read_text())
    for item in raw["actions"]:
        if item["id"] == action_id:
            item.update(changes)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"purpose": "marketing"}, "purpose must be one of"),
        ({"purpose": "offers"}, "purpose must be 'prevention'"),
        ({"title": {"fr": "", "en": "A check-up"}}, "title.fr must be a non-empty text"),
        ({"eligible": [["shoe_size", ">=", 40]]}, "conditions on features of the registry; got 'shoe_size'"),
        ({"relevant": [["age", "~", 40]]}, "an operator among"),
        ({"value": -1}, "value must be a positive number"),
        ({"kind": "nudge"}, "kind must be one of"),
    ],
)
def test_a_bad_action_is_named(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="dental_checkup") as info:
        load_catalogue(broken(tmp_path, "dental_checkup", **changes))
    assert message in str(info.value)


def test_rules_read_a_table_and_a_single_profile_the_same_way() -> None:
    frame = pd.DataFrame(
        {
            "age": [67, 40, 30],
            "chronic_treatment": [False, True, False],
            "flu_vaccinated_this_season": [False, False, False],
            "months_since_dental": [3, None, 14],
        },
        dtype="Float64",
    )
    catalogue = default_catalogue()
    flu, dental = catalogue["flu_vaccination"], catalogue["dental_checkup"]
    table = flu.is_eligible(frame_getter(frame))
    assert table.tolist() == [True, True, False]  # 65 and over, or a long-term treatment
    # "never" counts as infinitely long ago for months_since_* features
    assert dental.is_relevant(frame_getter(frame)).tolist() == [False, True, True]
    for i, row in enumerate(frame.to_dict("records")):
        values = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        assert flu.eligible_for(values) == table[i]


def test_a_missing_value_fails_a_comparison() -> None:
    catalogue = default_catalogue()
    assert not catalogue["funeral_cover"].eligible_for({"age": None, "holds_funeral_cover": False})
    assert catalogue["funeral_cover"].eligible_for({"age": 70, "holds_funeral_cover": False})


def _conditions(rule: Any) -> list[tuple[str, float]]:
    """Every (feature, threshold) a rule compares, nested ones included."""
    out = []
    for condition in rule:
        if condition[0] in ("any", "all"):
            out += _conditions(condition[1])
        else:
            out.append((condition[0], float(condition[2])))
    return out


def test_one_profile_and_a_table_agree_on_every_rule_at_every_boundary() -> None:
    """Serving's one-profile evaluator against training's table evaluator: for every action,
    profiles whose rule features sit on, beside or far from each threshold, or are missing."""
    catalogue = default_catalogue()
    rng = np.random.default_rng(7)
    for action in catalogue.actions:
        compared = _conditions(action.eligible) + _conditions(action.relevant)
        features = sorted({f for f, _ in compared} | {"age"})  # an empty rule reads age for the shape
        thresholds = {f: [t for g, t in compared if g == f] or [50.0] for f in features}
        rows = []
        for _ in range(400):
            row: dict[str, Any] = {}
            for f in features:
                t = float(rng.choice(thresholds[f]))
                row[f] = (
                    None if rng.random() < 0.15 else t + float(rng.choice([-30, -1, -0.5, 0, 0.5, 1, 30]))
                )
            rows.append(row)
        frame = pd.DataFrame(rows, columns=features, dtype="Float64")
        get = frame_getter(frame)
        table = (action.is_eligible(get), action.is_relevant(get))
        for i, row in enumerate(rows):
            assert (action.eligible_for(row), action.relevant_for(row)) == (table[0][i], table[1][i]), (
                action.id,
                row,
            )
        for rule, answers in zip((action.eligible, action.relevant), table, strict=True):
            if rule:  # the sample reaches both answers of every non-empty rule
                assert answers.any() and not answers.all(), (action.id, rule)
