"""The feature registry is the one source of truth for profile columns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from features import registry
from features.build import build_profiles
from nba import vocab


@pytest.fixture(scope="module")
def profiles(small_world: Path):
    return build_profiles(small_world, dt.date(2025, 6, 1))


def test_every_profile_column_is_registered_and_every_feature_is_built(profiles) -> None:
    columns = set(profiles.column_names) - set(registry.KEY_COLUMNS)
    declared = {f.name for f in registry.FEATURES}
    assert columns - declared == set(), "profile columns missing from the registry"
    assert declared - columns == set(), "registry features missing from the profiles"
    assert profiles.schema.equals(registry.profile_schema(), check_metadata=False)


def test_registry_entries_are_complete() -> None:
    names = [f.name for f in registry.FEATURES]
    assert len(names) == len(set(names))
    for f in registry.FEATURES:
        assert f.category in vocab.DATA_CATEGORIES, f.name
        assert f.type in registry.ARROW, f.name
        assert f.label_fr and f.label_en, f.name
        if f.unit in ("months", "years") and f.phrase_fr != "—" and "{value}" in f.phrase_fr:
            assert "{value}" in f.phrase_en, f.name


def test_offers_never_see_health_claims() -> None:
    offers = registry.allowed_features("offers")
    assert offers
    assert all(registry.BY_NAME[n].category != "health_claims" for n in offers)
    assert "months_since_dental" in registry.allowed_features("prevention")
    assert "sex_female" not in registry.allowed_features("prevention")  # never a model feature


def test_phrases_format_values_in_french_and_english() -> None:
    dental = registry.BY_NAME["months_since_dental"]
    assert dental.sentence(19) == "Votre dernière visite chez le dentiste remonte à 19 mois"
    assert dental.sentence(19, "en") == "Your last dental visit was 19 months ago"
    spend = registry.BY_NAME["dental_out_of_pocket_12m"]
    assert spend.sentence(1250.0).startswith("1\u202f250 €")


def test_a_month_or_less_reads_as_people_say_it() -> None:
    dental = registry.BY_NAME["months_since_dental"]
    assert dental.sentence(0) == "Votre dernière visite chez le dentiste remonte à moins d'un mois"
    assert dental.sentence(0, "en") == "Your last dental visit was less than a month ago"
    assert dental.sentence(1, "en") == "Your last dental visit was 1 month ago"
    assert dental.sentence(2, "en") == "Your last dental visit was 2 months ago"
    for feature in registry.FEATURES:
        if feature.unit == "months":
            assert " 0 mois" not in feature.sentence(0) and "0 months" not in feature.sentence(0, "en")
            assert "1 months" not in feature.sentence(1, "en"), feature.name


def test_feature_set_version_is_stable() -> None:
    assert registry.feature_set_version() == registry.feature_set_version()
    assert registry.feature_set_version().startswith("fs-")


def test_profile_file_carries_its_version(profiles, tmp_path: Path) -> None:
    from features.build import write_profiles

    write_profiles(profiles, tmp_path / "p.parquet")
    meta = pq.read_schema(tmp_path / "p.parquet").metadata
    assert meta[b"feature_set_version"] == registry.feature_set_version().encode()
    assert meta[b"as_of"] == b"2025-06-01"
