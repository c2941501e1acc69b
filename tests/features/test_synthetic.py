"""The synthetic world: determinism, chunking, atomic writes, and what the tables show."""

from __future__ import annotations

import datetime as dt
import filecmp
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import features.synthetic as synthetic
from features import tables
from features.synthetic import WorldConfig, generate_world
from nba import vocab
from nba.cli import app
from nba.errors import ConfigError

FILES = [f"{t}.parquet" for t in tables.TABLES] + [
    "ground_truth/propensities.parquet",
    "ground_truth/life_events.parquet",
]


def read(world: Path, name: str):
    return pq.read_table(world / name)


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    config = WorldConfig(members=1200, months=12, seed=3, workers=1)
    generate_world(config, tmp_path / "a")
    generate_world(config, tmp_path / "b")
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", FILES, shallow=False)
    assert mismatch == [] and errors == []
    assert len(match) == len(FILES)


def test_different_seed_gives_a_different_world(tmp_path: Path) -> None:
    generate_world(WorldConfig(members=500, months=12, seed=1, workers=1), tmp_path / "a")
    generate_world(WorldConfig(members=500, months=12, seed=2, workers=1), tmp_path / "b")
    assert not read(tmp_path / "a", "claims.parquet").equals(read(tmp_path / "b", "claims.parquet"))


def test_chunks_and_processes_do_not_change_the_world(tmp_path: Path) -> None:
    whole = WorldConfig(members=3000, months=12, seed=5, chunk_size=3000, workers=1)
    chunked = WorldConfig(members=3000, months=12, seed=5, chunk_size=1000, workers=2)
    generate_world(whole, tmp_path / "whole")
    generate_world(chunked, tmp_path / "chunked")
    for name in FILES:
        assert read(tmp_path / "whole", name).equals(read(tmp_path / "chunked", name)), name


def test_tables_follow_the_contract_schema(small_world: Path) -> None:
    for name, spec in tables.TABLES.items():
        schema = pq.read_schema(small_world / f"{name}.parquet")
        assert schema.names == list(spec.column_names), name
        assert pq.read_metadata(small_world / f"{name}.parquet").num_rows > 0, name


def test_existing_folder_is_not_overwritten_without_asking(tmp_path: Path) -> None:
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--overwrite"):
        generate_world(WorldConfig(members=10, months=2, workers=1), out)
    assert (out / "keep.txt").read_text() == "mine"


def test_a_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthetic.simulate_block

    def fail_on_second(config: WorldConfig, block: int):
        if block == 1:
            raise RuntimeError("disk full")
        return real(config, block)

    monkeypatch.setattr(synthetic, "simulate_block", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_world(WorldConfig(members=2000, months=2, workers=1, chunk_size=1000), tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "option", "got"),
    [
        (["--members", "0"], "--members", "0"),
        (["--months", "0"], "--months", "0"),
        (["--chunk-size", "1500"], "--chunk-size", "1500"),
        (["--extract-date", "31/12/2025"], "--extract-date", "31/12/2025"),
        (["--seed", "-1"], "--seed", "-1"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, args: list[str], option: str, got: str) -> None:
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "w"), *args])
    assert result.exit_code == 2
    assert option in result.output and got in result.output
    assert not (tmp_path / "w").exists()


def test_extract_date_bounds_every_date(tmp_path: Path) -> None:
    out = tmp_path / "w"
    generate_world(
        WorldConfig(members=800, months=6, seed=2, extract_date=dt.date(2024, 6, 15), workers=1), out
    )
    con = duckdb.connect()
    latest = con.execute(
        f"select max(payment_date), max(care_date) from read_parquet('{out}/claims.parquet')"
    ).fetchone()
    assert latest is not None and latest[0] <= dt.date(2024, 6, 15) and latest[1] <= dt.date(2024, 6, 15)
    earliest = con.execute(f"select min(care_date) from read_parquet('{out}/claims.parquet')").fetchone()
    assert earliest is not None and earliest[0] >= dt.date(2024, 1, 1)


def test_ground_truth_propensities_are_probabilities(small_world: Path) -> None:
    gt = read(small_world, "ground_truth/propensities.parquet").to_pandas()
    values = gt[list(vocab.ACTION_IDS)]
    assert ((values >= 0) & (values <= 1)).all().all()
    # every action is relevant for someone at some time
    assert (values.max() > 0.05).all()


def test_life_events_show_in_the_tables_as_an_insurer_sees_them(small_world: Path) -> None:
    con = duckdb.connect()
    w = small_world
    gt = f"read_parquet('{w}/ground_truth/life_events.parquet')"
    births_without_child = con.execute(
        f"""select count(*) from {gt} e left join read_parquet('{w}/beneficiaries.parquet') b
            on b.beneficiary_id = e.beneficiary_id and b.role = 'child' and b.birth_date = e.event_date
            where e.event = 'birth' and b.beneficiary_id is null"""
    ).fetchone()
    assert births_without_child == (0,)
    changes = {"retirement": "status = 'retired'", "marriage": "marital_status in ('married', 'pacsed')"}
    for event, condition in changes.items():
        missing = con.execute(
            f"""select count(*) from {gt} e where e.event = '{event}' and not exists (
                  select 1 from read_parquet('{w}/members.parquet') m where m.member_id = e.member_id
                  and m.valid_from = e.event_date and {condition})"""
        ).fetchone()
        total = con.execute(f"select count(*) from {gt} where event = '{event}'").fetchone()
        assert total is not None and total[0] > 0, event
        assert missing == (0,), event


def test_generated_worlds_meet_the_data_contract(small_world: Path, world_20k: Path) -> None:
    from features.contract import validate_world

    for world in (small_world, world_20k):
        report = validate_world(world, extract_date=None)
        assert report.ok, report.render()
