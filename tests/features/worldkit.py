"""A tiny consistent world written by hand, and helpers to corrupt any world.

``write_world`` writes three members (one with two contract versions, one vulnerable
retiree, one who left) with their beneficiaries, claims (including a reversal),
holdings, consent events and interactions, in any of the three layouts the
contract accepts. ``read_table`` / ``write_table`` / ``editing`` change one table
of any valid world in place, in the format it already has, so the corruption
tests also run on generated worlds; ``convert_world`` puts a world in another
layout. To test on a generated world instead of the hand-written one::

    generate_world(WorldConfig(members=30, months=12, seed=0), root / "parquet")
    convert_world(root / "parquet", root / "csv", "csv")
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.tables import TABLES, arrow_schema

Layout = Literal["parquet", "csv", "parts"]
EXTRACT_DATE = dt.date(2025, 12, 31)
UTC = dt.UTC


def ts(text: str) -> dt.datetime:
    """A UTC timestamp from ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _member(member_id: int, valid_from: str, valid_to: str | None, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "member_id": member_id, "valid_from": d(valid_from),
        "valid_to": d(valid_to) if valid_to else None,
        "vulnerable": False, "online_account_since": None, "membership_end": None,
        "end_reason": None,
    }  # fmt: skip
    row.update(values)
    return row


def members() -> list[dict[str, Any]]:
    one = {
        "birth_date": d("1980-05-12"), "sex": "F", "status": "employee_group",
        "marital_status": "married", "contract_type": "collective", "formula_level": 2,
        "online_account_since": d("2022-04-10"), "membership_start": d("2022-03-01"),
    }  # fmt: skip
    return [
        _member(1, "2022-03-01", "2024-06-01", region="Île-de-France", postcode="75011", **one),
        _member(1, "2024-06-01", None, region="Bretagne", postcode="35000", **one),
        _member(2, "2023-01-15", None, birth_date=d("1955-03-03"), sex="M", region="Occitanie",
                postcode="31000", status="retired", marital_status="widowed",
                contract_type="individual", formula_level=3, vulnerable=True,
                membership_start=d("2023-01-15")),
        _member(3, "2021-09-01", None, birth_date=d("1990-10-10"), sex="F", region="Outre-mer",
                postcode="97400", status="self_employed", marital_status="married",
                contract_type="individual", formula_level=1, online_account_since=d("2021-09-02"),
                membership_start=d("2021-09-01"), membership_end=d("2025-06-30"),
                end_reason="termination"),
    ]  # fmt: skip


def beneficiaries() -> list[dict[str, Any]]:
    rows = [
        (11, 1, "subscriber", "1980-05-12", "F", "2022-03-01", None, None),
        (12, 1, "spouse", "1978-11-02", "M", "2022-03-01", None, None),
        (13, 1, "child", "2010-07-20", "F", "2022-03-01", "2025-08-31", "left_contract"),
        (14, 1, "child", "2024-02-10", "M", "2024-02-10", None, None),
        (21, 2, "subscriber", "1955-03-03", "M", "2023-01-15", None, None),
        (31, 3, "subscriber", "1990-10-10", "F", "2021-09-01", "2025-06-30", "member_left"),
        (32, 3, "spouse", "1989-01-05", "M", "2022-01-01", "2025-06-30", "member_left"),
    ]
    names = TABLES["beneficiaries"].column_names
    return [
        dict(zip(names, (*r[:3], d(r[3]), r[4], d(r[5]), r[6] and d(r[6]), r[7]), strict=True)) for r in rows
    ]


def claims() -> list[dict[str, Any]]:
    rows = [
        (101, 1, 11, "2024-03-04", "2024-03-10", "gp", "consultation", 30.0, 21.0, 6.0, 3.0),
        (102, 1, 12, "2025-02-10", "2025-02-20", "dental", "checkup", 60.0, 42.0, 15.0, 3.0),
        (103, 1, 13, "2025-05-05", "2025-05-12", "optical", "glasses", 350.0, 10.0, 240.0, 100.0),
        (104, 1, 13, "2025-05-05", "2025-05-20", "optical", "glasses", -350.0, -10.0, -240.0,
         -100.0),
        (105, 2, 21, "2025-11-30", "2025-12-15", "pharmacy", "dispensing", 45.5, 30.85, 12.0, 2.65),
        (106, 2, 21, "2024-10-01", "2024-10-05", "vaccination", "flu", 12.0, 8.4, 3.6, 0.0),
        (107, 3, 31, "2025-01-20", "2025-01-25", "specialist", "ophthalmologist", 50.0, 30.0,
         15.0, 5.0),
        (108, 3, 32, "2025-06-30", "2025-07-03", "hospital", "stay", 1200.0, 960.0, 220.0, 20.0),
    ]  # fmt: skip
    names = TABLES["claims"].column_names
    return [dict(zip(names, (*r[:3], d(r[3]), d(r[4]), *r[5:], r[0] == 104), strict=True)) for r in rows]


def holdings() -> list[dict[str, Any]]:
    rows = [
        (201, 1, "home_insurance", "2022-05-01", None),
        (202, 1, "auto_insurance", "2023-01-01", "2025-01-01"),
        (203, 2, "funeral_cover", "2023-06-01", None),
        (204, 3, "prevoyance", "2021-09-01", "2025-06-30"),
    ]
    names = TABLES["holdings"].column_names
    return [dict(zip(names, (*r[:3], d(r[3]), r[4] and d(r[4])), strict=True)) for r in rows]


def consent_events() -> list[dict[str, Any]]:
    rows = [
        (301, 1, "prevention", "all", "granted", "2023-01", "app", "member",
         "2023-02-01 10:00", "2023-02-01 10:00", "2026-02-01 00:00"),
        (302, 1, "offers", "email", "objected", "2024-06", "web", "member",
         "2024-06-06 18:30", "2024-06-06 18:30", None),
        (303, 2, "offers", "all", "no_other_offers", "2023-01", "advisor", "advisor:A17",
         "2023-01-15 11:00", "2023-01-16 00:00", None),
        (304, 3, "offers_health_data", "all", "denied", "2021-03", "mail", "member",
         "2021-09-01 09:00", "2021-09-01 09:00", None),
        (305, 1, "prevention", "all", "withdrawn", "2025-09", "app", "member",
         "2025-12-31 23:30", "2025-12-31 23:30", None),
    ]  # fmt: skip
    names = TABLES["consent_events"].column_names
    return [dict(zip(names, (*r[:8], ts(r[8]), ts(r[9]), r[10] and ts(r[10])), strict=True)) for r in rows]


def interactions() -> list[dict[str, Any]]:
    rows = [
        (401, 1, "dental_checkup", "C-2025-03-dental", "app", "2025-03-01 09:00", 0.4,
         "clicked", "2025-03-01 09:05"),
        (402, 1, "home_insurance", "C-2024-01-home", "email", "2024-01-10 08:00", 0.25,
         "none", None),
        (403, 2, "flu_vaccination", "C-2025-10-flu", "sms", "2025-10-01 12:00", 1.0,
         "accepted", "2025-10-02 08:00"),
        (404, 3, "eye_exam", "C-2025-02-eyes", "push", "2025-02-01 07:00", 0.1,
         "dismissed", "2025-02-01 07:10"),
        (405, 2, "prevention_checkup", "C-2025-12-check", "app", "2025-12-31 22:00", 0.5,
         "none", None),
    ]  # fmt: skip
    names = TABLES["interactions"].column_names
    return [dict(zip(names, (*r[:5], ts(r[5]), *r[6:8], r[8] and ts(r[8])), strict=True)) for r in rows]


ROWS = {
    "members": members,
    "beneficiaries": beneficiaries,
    "claims": claims,
    "holdings": holdings,
    "consent_events": consent_events,
    "interactions": interactions,
}


def write_world(folder: Path, layout: Layout = "parquet") -> Path:
    """Write the tiny world into ``folder`` (created) in ``layout``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in ROWS.items():
        frame = pa.Table.from_pylist(rows(), schema=arrow_schema(TABLES[name])).to_pandas()
        write_table(folder, name, frame.astype(object), layout=layout)
    (folder / "extract.json").write_text(json.dumps({"extract_date": EXTRACT_DATE.isoformat()}))
    truth = folder / "ground_truth"
    truth.mkdir(exist_ok=True)
    pq.write_table(pa.table({"member_id": [1], "event": ["move"]}), truth / "life_events.parquet")
    return folder


def convert_world(source: Path, folder: Path, layout: Layout) -> Path:
    """Copy any world (a generated one, say) into ``folder`` in another layout."""
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(*TABLES, *(f"{t}.*" for t in TABLES)))
    for name in TABLES:
        write_table(folder, name, read_table(source, name), layout=layout)
    return folder


# --- editing one table of any world ---------------------------------------------------


def layout_of(world: Path, name: str) -> Layout:
    if (world / f"{name}.parquet").is_file():
        return "parquet"
    if (world / f"{name}.csv").is_file():
        return "csv"
    if (world / name).is_dir():
        return "parts"
    raise FileNotFoundError(f"table {name!r} not found in {world}")


def read_table(world: Path, name: str, objects: bool = True) -> pd.DataFrame:
    """A table, whatever its layout, as Python objects (easy to edit) or as pandas dtypes."""
    schema = arrow_schema(TABLES[name])
    layout = layout_of(world, name)
    if layout == "csv":
        options = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True)
        table = pacsv.read_csv(world / f"{name}.csv", convert_options=options)
    else:
        path = world / (f"{name}.parquet" if layout == "parquet" else name)
        table = pq.read_table(path, schema=schema)
    frame = table.to_pandas()
    return frame.astype(object) if objects else frame


def write_table(
    world: Path,
    name: str,
    frame: pd.DataFrame,
    layout: Layout | None = None,
    types: dict[str, pa.DataType] | None = None,
) -> None:
    """Replace table ``name`` by ``frame``, in its current layout unless ``layout`` is given.

    Columns are written with the contract's Arrow types, or ``types`` where given
    (to store a column with the wrong type). Extra columns are written as text.
    """
    layout = layout or layout_of(world, name)
    _remove_table(world, name)
    if layout == "csv":
        frame.to_csv(world / f"{name}.csv", index=False)
        return
    table = pa.Table.from_pandas(frame, schema=_schema(name, frame, types), preserve_index=False)
    if layout == "parquet":
        pq.write_table(table, world / f"{name}.parquet", row_group_size=max(1, len(frame) // 2))
        return
    (world / name).mkdir()
    half = (len(frame) + 1) // 2
    pq.write_table(table.slice(0, half), world / name / "part-0.parquet")
    pq.write_table(table.slice(half), world / name / "part-1.parquet")


@contextmanager
def editing(world: Path, name: str, types: dict[str, pa.DataType] | None = None) -> Iterator[pd.DataFrame]:
    """Yield table ``name`` of ``world`` as a frame; write it back, same layout, on exit."""
    frame = read_table(world, name)
    yield frame
    write_table(world, name, frame, types=types)


def extract_date_of(world: Path) -> dt.date:
    return dt.date.fromisoformat(json.loads((world / "extract.json").read_text())["extract_date"])


def _schema(name: str, frame: pd.DataFrame, types: dict[str, pa.DataType] | None) -> pa.Schema:
    declared = {f.name: f.type for f in arrow_schema(TABLES[name])}
    declared.update(types or {})
    return pa.schema([pa.field(c, declared.get(c, pa.string())) for c in frame.columns])


def _remove_table(world: Path, name: str) -> None:
    for suffix in (".parquet", ".csv"):
        (world / f"{name}{suffix}").unlink(missing_ok=True)
    if (world / name).is_dir():
        shutil.rmtree(world / name)
