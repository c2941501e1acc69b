"""``nba validate``: every contract rule, broken one at a time in a copy of a valid world.

Each case corrupts a copy of a valid world so that exactly the named rule fails
(``also`` lists the rules a corruption cannot avoid breaking with it), runs the
command through Typer's runner and checks the exit code, that the report names
the table, column and rule, and the number of violations.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from features.contract import pandera_schema, validate_world
from features.contract.doc import render_markdown
from features.synthetic import WorldConfig, generate_world
from features.tables import TABLES
from nba import vocab
from nba.cli import app
from tests.features.worldkit import (
    Layout,
    convert_world,
    editing,
    extract_date_of,
    read_table,
    write_table,
    write_world,
)

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
Expected = tuple[str, str | None, str]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One valid generated world per layout, written once; tests corrupt copies."""
    root = tmp_path_factory.mktemp("worlds")
    parquet = root / "parquet"
    generate_world(WorldConfig(members=300, months=12, seed=11, workers=1), parquet)
    return {
        "parquet": parquet,
        "csv": convert_world(parquet, root / "csv", "csv"),
        "parts": convert_world(parquet, root / "parts", "parts"),
    }


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three-member world of worldkit, written by hand: valid too."""
    return write_world(tmp_path_factory.mktemp("handmade") / "parquet", "parquet")


def test_the_handmade_world_is_valid(handmade: Path) -> None:
    result = validate(handmade)
    assert result.exit_code == 0, result.output


@pytest.fixture
def world(worlds: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(worlds["parquet"], tmp_path / "world"))


def copy_world(worlds: dict[str, Path], layout: Layout, tmp_path: Path) -> Path:
    return Path(shutil.copytree(worlds[layout], tmp_path / f"world-{layout}"))


def validate(world: Path, *options: str) -> Result:
    return CliRunner().invoke(app, ["validate", str(world), *options])


def flat(result: Result) -> str:
    """The output with line wrapping undone (Rich wraps at the console width)."""
    return " ".join(result.output.split())


def assert_reports(result: Result, expected: tuple[Expected, ...]) -> None:
    """Exit 1, no traceback, every expected rule named with its table and column, nothing else."""
    output = flat(result)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    for table, column, rule in expected:
        where = f"{table}.{column}" if column else table
        assert f"{where}: rule {rule}" in output, result.output
    n = len(expected)
    assert f", {n} violation{'' if n == 1 else 's'} (" in output, result.output


def first(frame: pd.DataFrame, mask: pd.Series | None = None, what: str = "row") -> Hashable:
    """Label of the first row matching ``mask``; fails clearly if the world has none."""
    rows = frame.index if mask is None else frame.index[mask.astype(bool)]
    assert len(rows), f"the valid world has no {what}, which this corruption needs"
    return rows[0]


def end_of_extract(world: Path) -> dt.datetime:
    """Midnight UTC after the extract date."""
    return dt.datetime.combine(extract_date_of(world) + DAY, dt.time(), tzinfo=dt.UTC)


def drop_claims_of(world: Path, beneficiary: object) -> None:
    claims = read_table(world, "claims")
    write_table(world, "claims", claims[claims["beneficiary_id"] != beneficiary])


def bogus_id(frame: pd.DataFrame, column: str) -> int:
    return int(frame[column].max()) + 1_000_000


# --- the cases: one per rule --------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    corrupt: Callable[[Path], None]
    expected: tuple[Expected, ...]


CASES: list[Case] = []


def breaks(
    table: str, column: str | None, rule: str, variant: str = "", also: tuple[Expected, ...] = ()
) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    """Register the decorated corruption as the case breaking ``table.column`` ``rule``."""

    def register(corrupt: Callable[[Path], None]) -> Callable[[Path], None]:
        name = f"{table}.{column}" if column else table
        name += f"-{rule}" + (f"-{variant}" if variant else "")
        CASES.append(Case(name, corrupt, ((table, column, rule), *also)))
        return corrupt

    return register


# table level


def _remove_holdings(world: Path) -> None:
    for path in (world / "holdings.parquet", world / "holdings.csv"):
        path.unlink(missing_ok=True)
    shutil.rmtree(world / "holdings", ignore_errors=True)


@breaks("holdings", None, "table_missing")
def _missing_table(world: Path) -> None:
    _remove_holdings(world)


@breaks("holdings", None, "table_ambiguous")
def _second_copy(world: Path) -> None:
    frame = read_table(world, "holdings")
    if (world / "holdings.csv").exists():
        pq.write_table(pa.Table.from_pandas(frame), world / "holdings.parquet")
    else:
        frame.to_csv(world / "holdings.csv", index=False)


def _garbage(world: Path, content: bytes, suffix: str) -> None:
    _remove_holdings(world)
    (world / f"holdings{suffix}").write_bytes(content)


@breaks("holdings", None, "unreadable", "garbage-parquet")
def _garbage_parquet(world: Path) -> None:
    _garbage(world, b"\x00\x01 this is not parquet \xff" * 50, ".parquet")


@breaks("holdings", None, "unreadable", "truncated-parquet")
def _truncated_parquet(world: Path) -> None:
    write_table(world, "holdings", read_table(world, "holdings"), layout="parquet")
    path = world / "holdings.parquet"
    path.write_bytes(path.read_bytes()[:-40])


@breaks("holdings", None, "unreadable", "corrupt-pages")
def _corrupt_pages(world: Path) -> None:
    # the footer still reads: the damage shows only when the data is scanned
    write_table(world, "holdings", read_table(world, "holdings"), layout="parquet")
    path = world / "holdings.parquet"
    content = bytearray(path.read_bytes())
    content[8 : len(content) // 2] = b"\xab" * (len(content) // 2 - 8)
    path.write_bytes(bytes(content))


@breaks("holdings", None, "unreadable", "garbage-csv")
def _garbage_csv(world: Path) -> None:
    _garbage(world, "€ une ligne sans rapport\navec le contrat\n".encode(), ".csv")


@breaks("holdings", "product", "column_missing")
def _drop_column(world: Path) -> None:
    with editing(world, "holdings") as frame:
        del frame["product"]


@breaks("holdings", "comment", "column_unexpected")
def _extra_column(world: Path) -> None:
    with editing(world, "holdings") as frame:
        frame["comment"] = "note"


@breaks("extract.json", None, "extract_date", "missing")
def _no_extract_date(world: Path) -> None:
    (world / "extract.json").unlink()


@breaks("extract.json", None, "extract_date", "malformed")
def _bad_extract_date(world: Path) -> None:
    (world / "extract.json").write_text(json.dumps({"extract_date": "31/12/2025"}))


# one column


@breaks("holdings", "member_id", "type")
def _text_in_int_column(world: Path) -> None:
    with editing(world, "holdings", types={"member_id": pa.string()}) as frame:
        frame["member_id"] = frame["member_id"].astype(str)
        frame.at[first(frame), "member_id"] = "one"


@breaks("consent_events", "captured_at", "type")
def _text_in_timestamp_column(world: Path) -> None:
    with editing(world, "consent_events", types={"captured_at": pa.string()}) as frame:
        frame["captured_at"] = frame["captured_at"].astype(str)
        frame.at[first(frame), "captured_at"] = "yesterday"


@breaks("holdings", "product", "not_null")
def _null_in_required_column(world: Path) -> None:
    with editing(world, "holdings") as frame:
        frame.at[first(frame), "product"] = None


@breaks("claims", "total_cost", "not_null", "nan")
def _nan_amount(world: Path) -> None:
    with editing(world, "claims") as frame:
        frame.at[first(frame), "total_cost"] = float("nan")


@breaks("members", "sex", "allowed_values")
def _unknown_sex(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.at[first(frame), "sex"] = "X"


@breaks("claims", "care_category", "allowed_values")
def _unknown_category(world: Path) -> None:
    with editing(world, "claims") as frame:
        frame.at[first(frame), "care_category"] = "dentistry"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("purpose", "marketing"),
        ("channel", "fax"),
        ("decision", "maybe"),
        ("notice_version", "2019-01"),
        ("source", "phone"),
    ],
)
def test_consent_closed_lists(world: Path, column: str, value: str) -> None:
    with editing(world, "consent_events") as frame:
        frame.at[first(frame), column] = value
    assert_reports(validate(world), (("consent_events", column, "allowed_values"),))


@breaks("holdings", "holding_id", "min_value")
def _id_below_minimum(world: Path) -> None:
    with editing(world, "holdings") as frame:
        frame.at[first(frame), "holding_id"] = 0


@breaks("members", "postcode", "length")
def _short_postcode(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.at[first(frame), "postcode"] = "750"


# keys and foreign keys


@breaks("claims", "claim_id", "unique_key")
def _duplicate_claim_id(world: Path) -> None:
    with editing(world, "claims") as frame:
        frame.at[frame.index[1], "claim_id"] = frame.at[frame.index[0], "claim_id"]


@breaks("members", "member_id, valid_from", "unique_key")
def _duplicate_member_version(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.loc[len(frame)] = frame.loc[first(frame)]


@breaks("beneficiaries", "member_id", "foreign_key")
def _beneficiary_of_unknown_member(world: Path) -> None:
    with editing(world, "beneficiaries") as frame:
        row = first(frame, frame["role"] != "subscriber", "non-subscriber beneficiary")
        beneficiary = frame.at[row, "beneficiary_id"]
        frame.at[row, "member_id"] = bogus_id(frame, "member_id")
    drop_claims_of(world, beneficiary)  # they would point at another member


@pytest.mark.parametrize("table", ["claims", "holdings", "consent_events", "interactions"])
def test_member_foreign_keys(world: Path, table: str) -> None:
    with editing(world, table) as frame:
        frame.at[first(frame), "member_id"] = bogus_id(frame, "member_id")
    assert_reports(validate(world), ((table, "member_id", "foreign_key"),))


@breaks("claims", "beneficiary_id", "foreign_key")
def _claim_of_unknown_beneficiary(world: Path) -> None:
    with editing(world, "claims") as frame:
        frame.at[first(frame), "beneficiary_id"] = bogus_id(frame, "beneficiary_id")


# claims


@breaks("claims", "payment_date", "care_before_payment")
def _paid_before_care(world: Path) -> None:
    with editing(world, "claims") as frame:
        row = first(frame)
        frame.at[row, "payment_date"] = frame.at[row, "care_date"] - DAY


@breaks("claims", "payment_date", "not_after_extract_date")
def _paid_after_extract(world: Path) -> None:
    with editing(world, "claims") as frame:
        frame.at[first(frame), "payment_date"] = extract_date_of(world) + DAY


@breaks("claims", "total_cost", "amounts_add_up")
def _amounts_do_not_add_up(world: Path) -> None:
    with editing(world, "claims") as frame:
        frame.at[first(frame, ~frame["is_reversal"]), "total_cost"] += 1.0


def _negative(world: Path, column: str, compensate: str) -> None:
    """Make ``column`` -1 on an ordinary line, keeping the total by raising ``compensate``."""
    with editing(world, "claims") as frame:
        row = first(frame, ~frame["is_reversal"], "ordinary claim line")
        frame.at[row, compensate] += frame.at[row, column] + 1.0
        frame.at[row, column] = -1.0


for _column, _compensate in [
    ("social_security_paid", "out_of_pocket"),
    ("mutuelle_paid", "out_of_pocket"),
    ("out_of_pocket", "social_security_paid"),
]:
    breaks("claims", _column, "not_negative")(lambda world, c=_column, k=_compensate: _negative(world, c, k))


@breaks("claims", "total_cost", "not_negative", also=(("claims", "out_of_pocket", "not_negative"),))
def _negative_total(world: Path) -> None:
    # a negative total needs a negative part: two rules break
    with editing(world, "claims") as frame:
        row = first(frame, ~frame["is_reversal"], "ordinary claim line")
        frame.loc[row, ["total_cost", "social_security_paid", "mutuelle_paid"]] = [-1.0, 0.0, 0.0]
        frame.at[row, "out_of_pocket"] = -1.0


def _reversal_with_positive(world: Path, column: str, compensate: str) -> None:
    """Turn an ordinary line into a reversal, then make ``column`` +1 (total kept)."""
    amounts = ["total_cost", "social_security_paid", "mutuelle_paid", "out_of_pocket"]
    with editing(world, "claims") as frame:
        row = first(frame, ~frame["is_reversal"], "ordinary claim line")
        for amount in amounts:
            frame.at[row, amount] = -abs(frame.at[row, amount])
        frame.at[row, "is_reversal"] = True
        frame.at[row, compensate] -= 1.0 - frame.at[row, column]
        frame.at[row, column] = 1.0


for _column, _compensate in [
    ("social_security_paid", "out_of_pocket"),
    ("mutuelle_paid", "out_of_pocket"),
    ("out_of_pocket", "social_security_paid"),
]:
    breaks("claims", _column, "reversal_not_positive")(
        lambda world, c=_column, k=_compensate: _reversal_with_positive(world, c, k)
    )


@breaks(
    "claims", "total_cost", "reversal_not_positive",
    also=(("claims", "out_of_pocket", "reversal_not_positive"),),
)  # fmt: skip
def _positive_reversal_total(world: Path) -> None:
    with editing(world, "claims") as frame:
        row = first(frame)
        frame.loc[row, ["total_cost", "social_security_paid", "mutuelle_paid"]] = [1.0, 0.0, 0.0]
        frame.at[row, "out_of_pocket"] = 1.0
        frame.at[row, "is_reversal"] = True


@breaks("claims", "act", "act_in_category")
def _act_of_another_category(world: Path) -> None:
    with editing(world, "claims") as frame:
        row = first(frame)
        own = vocab.CARE_ACTS[frame.at[row, "care_category"]]
        frame.at[row, "act"] = next(a for a in vocab.ALL_ACTS if a not in own)


@breaks("claims", "beneficiary_id", "beneficiary_of_member")
def _someone_elses_beneficiary(world: Path) -> None:
    people = read_table(world, "beneficiaries")
    with editing(world, "claims") as frame:
        for row, claim in frame.iterrows():
            covered = (
                (people["member_id"] != claim["member_id"])
                & (people["start_date"] <= claim["care_date"])
                & (people["end_date"].isna() | (people["end_date"] >= claim["care_date"]))
            )
            if covered.any():
                frame.at[row, "beneficiary_id"] = people.loc[covered, "beneficiary_id"].iloc[0]
                return
    raise AssertionError("no claim could be moved to another member's covered beneficiary")


@breaks("claims", "care_date", "care_within_coverage")
def _care_before_coverage(world: Path) -> None:
    people = read_table(world, "beneficiaries").set_index("beneficiary_id")
    with editing(world, "claims") as frame:
        row = first(frame)
        start = people.at[frame.at[row, "beneficiary_id"], "start_date"]
        frame.at[row, "care_date"] = start - DAY


# members


def _current(frame: pd.DataFrame) -> Hashable:
    return first(frame, frame["valid_to"].isna(), "current member version")


def _earlier_version(frame: pd.DataFrame) -> Hashable:
    mask = frame["valid_to"].notna() & frame["membership_end"].isna()
    return first(frame, mask, "member with an earlier version")


@breaks("members", "valid_to", "valid_from_before_valid_to")
def _empty_version(world: Path) -> None:
    with editing(world, "members") as frame:
        row = _current(frame)
        frame.at[row, "valid_to"] = frame.at[row, "valid_from"]


@breaks("members", "valid_from", "no_overlapping_versions")
def _overlapping_versions(world: Path) -> None:
    with editing(world, "members") as frame:
        row = first(frame, frame["valid_to"].isna() & (frame["valid_from"] < extract_date_of(world)))
        frame.loc[len(frame)] = frame.loc[row]
        frame.at[len(frame) - 1, "valid_from"] = frame.at[row, "valid_from"] + DAY


@breaks("members", "membership_end", "membership_start_before_end")
def _membership_ends_before_start(world: Path) -> None:
    with editing(world, "members") as frame:
        row = _earlier_version(frame)
        frame.at[row, "membership_end"] = frame.at[row, "membership_start"] - DAY
        frame.at[row, "end_reason"] = "termination"


@breaks("members", "end_reason", "end_reason_iff_end")
def _member_end_reason_without_end(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.at[first(frame, frame["membership_end"].isna()), "end_reason"] = "death"


@breaks("members", "valid_from", "not_after_extract_date")
def _future_version(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.at[_current(frame), "valid_from"] = extract_date_of(world) + DAY


@breaks("members", "membership_start", "not_after_extract_date")
def _future_membership(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.at[_earlier_version(frame), "membership_start"] = extract_date_of(world) + DAY


@breaks("members", "online_account_since", "not_after_extract_date")
def _future_online_account(world: Path) -> None:
    with editing(world, "members") as frame:
        frame.at[first(frame), "online_account_since"] = extract_date_of(world) + DAY


# beneficiaries


def _ended_member_beneficiary(world: Path, frame: pd.DataFrame) -> Hashable:
    members = read_table(world, "members")
    ended = members.loc[members["membership_end"].notna(), "member_id"]
    return first(frame, frame["member_id"].isin(ended), "beneficiary of a member who left")


@breaks("beneficiaries", "end_date", "start_before_end")
def _coverage_ends_before_start(world: Path) -> None:
    with editing(world, "beneficiaries") as frame:
        row = first(frame, frame["role"] != "subscriber", "non-subscriber beneficiary")
        frame.at[row, "end_date"] = frame.at[row, "start_date"] - DAY
        frame.at[row, "end_reason"] = "left_contract"
        beneficiary = frame.at[row, "beneficiary_id"]
    drop_claims_of(world, beneficiary)  # they would fall outside the coverage


@breaks("beneficiaries", "end_reason", "end_reason_iff_end")
def _beneficiary_end_reason_without_end(world: Path) -> None:
    with editing(world, "beneficiaries") as frame:
        frame.at[first(frame, frame["end_date"].isna()), "end_reason"] = "death"


@breaks("beneficiaries", "start_date", "starts_within_membership")
def _covered_before_membership(world: Path) -> None:
    members = read_table(world, "members").groupby("member_id")["membership_start"].min()
    with editing(world, "beneficiaries") as frame:
        row = first(frame)
        frame.at[row, "start_date"] = members[frame.at[row, "member_id"]] - DAY


@breaks("beneficiaries", "end_date", "ends_within_membership")
def _covered_after_membership(world: Path) -> None:
    with editing(world, "beneficiaries") as frame:
        row = _ended_member_beneficiary(world, frame)
        frame.at[row, "end_date"] = frame.at[row, "end_date"] + DAY


@breaks("beneficiaries", "end_date", "closed_when_membership_ended")
def _still_covered_after_membership(world: Path) -> None:
    with editing(world, "beneficiaries") as frame:
        row = _ended_member_beneficiary(world, frame)
        frame.at[row, "end_date"] = None
        frame.at[row, "end_reason"] = None


@breaks("beneficiaries", "role", "one_subscriber")
def _no_subscriber(world: Path) -> None:
    with editing(world, "beneficiaries") as frame:
        frame.at[first(frame, frame["role"] == "subscriber"), "role"] = "spouse"


# holdings, consent events, interactions


@breaks("holdings", "end_date", "start_before_end")
def _holding_ends_before_start(world: Path) -> None:
    with editing(world, "holdings") as frame:
        row = first(frame)
        frame.at[row, "end_date"] = frame.at[row, "start_date"] - DAY


@breaks("holdings", "start_date", "not_after_extract_date")
def _future_holding(world: Path) -> None:
    with editing(world, "holdings") as frame:
        frame.at[first(frame, frame["end_date"].isna()), "start_date"] = extract_date_of(world) + DAY


@breaks("holdings", "end_date", "not_after_extract_date")
def _future_holding_end(world: Path) -> None:
    with editing(world, "holdings") as frame:
        frame.at[first(frame), "end_date"] = extract_date_of(world) + DAY


@breaks("consent_events", "captured_at", "not_after_extract_date")
def _captured_after_extract(world: Path) -> None:
    with editing(world, "consent_events") as frame:
        frame.at[first(frame), "captured_at"] = end_of_extract(world) + HOUR


@breaks("consent_events", "expires_at", "expires_after_effective")
def _expires_before_effective(world: Path) -> None:
    with editing(world, "consent_events") as frame:
        row = first(frame)
        frame.at[row, "expires_at"] = frame.at[row, "effective_from"] - DAY


@breaks("interactions", "exposure_probability", "probability_in_range", "zero")
def _zero_probability(world: Path) -> None:
    with editing(world, "interactions") as frame:
        frame.at[first(frame), "exposure_probability"] = 0.0


@breaks("interactions", "exposure_probability", "probability_in_range", "above-one")
def _probability_above_one(world: Path) -> None:
    with editing(world, "interactions") as frame:
        frame.at[first(frame), "exposure_probability"] = 1.5


@breaks("interactions", "responded_at", "response_iff_responded_at", "none-with-time")
def _none_with_response_time(world: Path) -> None:
    with editing(world, "interactions") as frame:
        frame.at[first(frame, frame["response"] != "none", "response"), "response"] = "none"


@breaks("interactions", "responded_at", "response_iff_responded_at", "response-without-time")
def _response_without_time(world: Path) -> None:
    with editing(world, "interactions") as frame:
        frame.at[first(frame, frame["response"] == "none", "no response"), "response"] = "clicked"


@breaks("interactions", "responded_at", "responded_after_exposed")
def _responded_before_exposed(world: Path) -> None:
    with editing(world, "interactions") as frame:
        row = first(frame, frame["response"] != "none", "response")
        frame.at[row, "responded_at"] = frame.at[row, "exposed_at"] - HOUR


@breaks("interactions", "exposed_at", "not_after_extract_date")
def _exposed_after_extract(world: Path) -> None:
    with editing(world, "interactions") as frame:
        row = first(frame, frame["response"] == "none", "no response")
        frame.at[row, "exposed_at"] = end_of_extract(world) + HOUR


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_rule_is_reported(world: Path, case: Case) -> None:
    case.corrupt(world)
    assert_reports(validate(world), case.expected)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["csv", "parts"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_rule_is_reported_in_every_layout(
    worlds: dict[str, Path], tmp_path: Path, layout: Layout, case: Case
) -> None:
    world = copy_world(worlds, layout, tmp_path)
    case.corrupt(world)
    assert_reports(validate(world), case.expected)


# --- beyond single rules -------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["parquet", "csv", "parts"])
def test_valid_world_passes(worlds: dict[str, Path], layout: Layout) -> None:
    result = validate(worlds[layout])
    assert result.exit_code == 0, result.output
    assert flat(result).startswith("ok: 6 tables, ")
    assert "0 violations (extract date 2025-12-31)" in flat(result)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("layout", ["parquet", "csv"])
def test_input_is_left_unchanged(
    worlds: dict[str, Path], tmp_path: Path, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = copy_world(worlds, layout, tmp_path)
    _paid_after_extract(world)  # a failing run reads every table and writes a report
    before = fingerprint(world)
    monkeypatch.chdir(world)  # nothing may be spilled into the working folder either
    assert validate(world).exit_code == 1
    assert fingerprint(world) == before


@pytest.mark.parametrize(
    ("table", "column", "text"),
    [
        ("holdings", "holding_id", "12.5"),
        ("members", "birth_date", "12/05/1980"),
        ("members", "vulnerable", "yes"),
        ("consent_events", "captured_at", "2023-02-01"),
        ("claims", "total_cost", "30,5"),
    ],
)
def test_csv_text_that_does_not_parse(
    worlds: dict[str, Path], tmp_path: Path, table: str, column: str, text: str
) -> None:
    world = copy_world(worlds, "csv", tmp_path)
    with editing(world, table) as frame:
        frame[column] = frame[column].astype(str)
        frame.at[first(frame), column] = text
    result = validate(world)
    assert_reports(result, ((table, column, "type"),))
    assert f"received {column} = {text!r}" in flat(result)


def test_ground_truth_is_never_read(world: Path) -> None:
    (world / "ground_truth" / "life_events.parquet").write_bytes(b"not parquet at all")
    (world / "ground_truth" / "claims.parquet").write_bytes(b"nor this")
    assert validate(world).exit_code == 0


def test_extract_date_option_overrides_the_file(world: Path) -> None:
    (world / "extract.json").unlink()
    assert validate(world, "--extract-date", "2025-12-31").exit_code == 0
    result = validate(world, "--extract-date", "2025-06-30")
    assert result.exit_code == 1
    assert "claims.payment_date: rule not_after_extract_date" in flat(result)
    assert "(extract date 2025-06-30)" in flat(result)


def test_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = validate(tmp_path / "nowhere")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit), result.exception
    assert "is not a folder" in flat(result)


def test_report_says_what_was_expected_and_received(world: Path) -> None:
    _unknown_sex(world)
    with editing(world, "consent_events") as frame:  # Rich markup in the data prints verbatim
        frame.at[first(frame), "source"] = "[bold]app[/bold]"
    output = flat(validate(world))
    assert "members.sex: rule allowed_values (1 row) expected one of 'F', 'M'; received sex = 'X'" in output
    assert "example 1: member_id=" in output
    assert "received source = '[bold]app[/bold]'" in output


# --- one contract, two engines, one doc ----------------------------------------------------

PANDERA_RULES = {
    "isin": "allowed_values",
    "greater_than_or_equal_to": "min_value",
    "str_length": "length",
    "not_nullable": "not_null",
}
"""pandera's check names -> the rule names of the SQL engine."""


def test_valid_world_passes_pandera(worlds: dict[str, Path]) -> None:
    for name, table in TABLES.items():
        pandera_schema(table).validate(read_table(worlds["parquet"], name, objects=False))


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("members", "sex", "X"),
        ("members", "postcode", "750"),
        ("holdings", "holding_id", 0),
        ("holdings", "product", None),
    ],
)
def test_pandera_and_duckdb_flag_the_same_cells(world: Path, table: str, column: str, value: object) -> None:
    with editing(world, table) as frame:
        frame.at[first(frame), column] = value
    frame = read_table(world, table, objects=False)
    with pytest.raises(pandera.errors.SchemaErrors) as caught:
        pandera_schema(TABLES[table]).validate(frame, lazy=True)
    failures = caught.value.failure_cases
    by_pandera = {
        (col, PANDERA_RULES[check.split("(")[0]], int(index))
        for col, check, index in zip(failures["column"], failures["check"], failures["index"], strict=True)
    }
    [violation] = validate_world(world).violations
    by_duckdb = {(violation.column, violation.rule, 0)}  # the first row was corrupted
    assert by_pandera == by_duckdb


def test_data_contract_doc_is_up_to_date() -> None:
    doc = Path(__file__).parents[2] / "docs" / "data-contract.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data-contract.md is out of date: "
        "run .venv/bin/python -m features.contract.doc docs/data-contract.md"
    )
