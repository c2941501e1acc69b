"""nba train-table / score-table on tables built here and on the generator's profiles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from nba.errors import ConfigError, DataError
from training import table as tt
from training.metrics import binary_metrics
from training.models import ModelConfig

REGIONS = ["Bretagne", "Normandie", "Occitanie", "Corse du Sud"]
REASONS = [f"reason_{k}_{part}" for k in (1, 2, 3) for part in ("feature", "value", "contribution")]


def planted(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A table whose label follows ``signal`` strongly and ``region`` a little, with noise,
    missing values, a boolean, a date, a constant and an all-missing column."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    region = rng.choice(REGIONS, size=rows).astype(object)
    logit = -1.5 + 1.8 * signal + np.where(region == "Occitanie", 1.0, 0.0)
    noise = rng.normal(size=rows)
    noise[rng.random(rows) < 0.1] = np.nan
    region[rng.random(rows) < 0.05] = None
    opened = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
    return pd.DataFrame(
        {
            "customer": [f"C{i:06d}" for i in range(rows)],
            "signal": signal,
            "region": region,
            "noise": noise,
            "paperless": rng.random(rows) < 0.5,
            "opened": opened,
            "country": "FR",
            "empty": np.nan,
            "label": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


@pytest.fixture(scope="module")
def home(mlflow_home: tuple[str, Path]) -> tuple[str, Path]:
    """The session's throw-away MLflow store (tests/conftest.py), shared with nba train's tests."""
    return mlflow_home


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "planted.csv"
    planted().to_csv(path, index=False)
    return path


def train(path: Path, name: str, home: tuple[str, Path], **options: Any) -> tt.TableTraining:
    options = {"threads": 1} | options  # the test machine's cores are busy with other tests
    return tt.train_table(path, tracking_uri=home[0], artifact_root=home[1], name=name, **options)


@pytest.fixture(scope="module")
def trained(planted_csv: Path, home: tuple[str, Path]) -> tt.TableTraining:
    return train(planted_csv, "planted", home, label="label", id_column="customer")


@pytest.fixture(scope="module")
def scored(trained: tt.TableTraining, planted_csv: Path, home: tuple[str, Path]) -> pd.DataFrame:
    out = planted_csv.with_name("scores.parquet")
    tt.score_table(planted_csv, "planted", out, tracking_uri=home[0])
    return pd.read_parquet(out)


def test_the_model_ranks_the_planted_signal(trained: tt.TableTraining) -> None:
    assert trained.metrics["roc_auc"] > 0.75
    assert sum(trained.rows.values()) == 3000 and abs(trained.rows["test"] - 600) <= 1
    schema = trained.schema
    assert schema.features == ["signal", "region", "noise", "paperless", "opened"]
    assert schema.kinds == {"signal": "numeric", "region": "categorical", "noise": "numeric",
                            "paperless": "numeric", "opened": "date"}  # fmt: skip
    assert schema.levels["region"] == sorted(REGIONS)
    assert "'FR'" in schema.dropped["country"] and "missing" in schema.dropped["empty"]
    assert "customer" not in schema.features and "label" not in schema.features


def test_the_version_records_what_scoring_needs(trained: tt.TableTraining, home: tuple[str, Path]) -> None:
    client = MlflowClient(tracking_uri=home[0], registry_uri=home[0])
    version = client.get_model_version_by_alias("planted", "challenger")
    assert str(version.version) == trained.version
    assert version.tags["kind"] == "table" and version.tags["id_column"] == "customer"
    names = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {tt.SCHEMA_FILE, "shap_importance.csv", "lift_curve.csv", "model_card.md"} <= names
    run = client.get_run(trained.run_id)
    assert run.data.metrics["roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert int(run.data.params["best_iteration"]) == trained.rounds


def test_scores_carry_the_id_and_the_strongest_reasons(scored: pd.DataFrame) -> None:
    table = planted()
    assert list(scored.columns) == ["customer", "score", *REASONS]
    assert scored["customer"].tolist() == table["customer"].tolist()
    assert scored["score"].between(0, 1).all()
    assert binary_metrics(table["label"].to_numpy(), scored["score"].to_numpy())["roc_auc"] > 0.75
    extreme = (table["signal"].abs() > 2.5).to_numpy()
    assert extreme.sum() > 10
    assert (scored.loc[extreme, "reason_1_feature"] == "signal").all()
    # the contribution follows the sign of the signal, and the value is the file's own value
    sign = np.sign(table.loc[extreme, "signal"].to_numpy())
    assert (np.sign(scored.loc[extreme, "reason_1_contribution"].to_numpy()) == sign).all()
    assert scored.loc[extreme, "reason_1_value"].astype(float).to_numpy() == pytest.approx(
        table.loc[extreme, "signal"].to_numpy(), rel=1e-5
    )
    strength = scored[[f"reason_{k}_contribution" for k in (1, 2, 3)]].abs().to_numpy()
    assert (np.nan_to_num(strength[:, :-1]) >= np.nan_to_num(strength[:, 1:])).all()


def test_same_seed_same_model_and_scores(
    trained: tt.TableTraining, scored: pd.DataFrame, planted_csv: Path, home: tuple[str, Path], tmp_path: Path
) -> None:
    again = train(planted_csv, "planted", home, label="label", id_column="customer")
    assert int(again.version) > int(trained.version) and again.rounds == trained.rounds
    out = tmp_path / "again.parquet"
    tt.score_table(planted_csv, "planted", out, version=again.version, tracking_uri=home[0])
    pd.testing.assert_frame_equal(pd.read_parquet(out), scored)
    # the alias and an explicit version number pick the versions they name
    tt.score_table(planted_csv, "planted", out, version=trained.version, tracking_uri=home[0])
    pd.testing.assert_frame_equal(pd.read_parquet(out), scored)


def test_unseen_categories_and_missing_values_are_scored(
    trained: tt.TableTraining, home: tuple[str, Path], tmp_path: Path
) -> None:
    rows = planted(6, seed=3).drop(columns=["label", "empty", "country"])
    rows = rows[rows.columns[::-1]]  # the columns in any order
    rows["region"] = ["Guyane", "Guyane", None, "Bretagne", "Occitanie", "Bretagne"]
    rows.loc[rows.index[:2], "signal"] = np.nan
    path = tmp_path / "new.parquet"
    rows.to_parquet(path, index=False)
    result = tt.score_table(path, "planted", tmp_path / "out.csv", tracking_uri=home[0])
    assert result.unseen == {"region": (2, "'Guyane'")}
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["score"].between(0, 1).all()
    as_missing = rows.assign(region=[None, None, *rows["region"][2:]])
    as_missing.to_parquet(path, index=False)
    tt.score_table(path, "planted", tmp_path / "missing.csv", tracking_uri=home[0])
    assert pd.read_csv(tmp_path / "missing.csv")["score"].tolist() == out["score"].tolist()


def test_a_profile_table_from_the_generator(
    small_world: Path, home: tuple[str, Path], tmp_path: Path
) -> None:
    """Profiles as a warehouse extract: ~200 columns, a string region, a date, booleans, gaps."""
    from features.build import build_profiles

    profiles = build_profiles(small_world, dt.date(2025, 6, 1)).to_pandas()
    age = profiles["age"].to_numpy()
    logit = (
        -1.0 + 2.0 * (age - age.mean()) / age.std() + np.where(profiles["region"] == "Occitanie", 1.0, 0.0)
    )
    rng = np.random.default_rng(0)
    profiles["took_offer"] = (rng.random(len(age)) < 1 / (1 + np.exp(-logit))).astype(int)
    path = tmp_path / "profiles.parquet"
    profiles.to_parquet(path, index=False)
    fast = ModelConfig(n_estimators=150, learning_rate=0.1)
    result = train(path, "profiles", home, label="took_offer", id_column="member_id", config=fast)
    assert result.metrics["roc_auc"] > 0.75
    dropped = list(result.schema.dropped)
    assert "as_of" in dropped  # one date for everyone: constant
    assert all(profiles[c].nunique(dropna=False) == 1 for c in dropped)  # and only constant columns
    assert len(dropped) < 10
    assert result.schema.kinds["region"] == "categorical" and "member_id" not in result.schema.features
    tt.score_table(path, "profiles", tmp_path / "s.parquet", tracking_uri=home[0])
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert scores["member_id"].tolist() == profiles["member_id"].tolist()
    assert scores["reason_1_feature"].value_counts().index[0] == "age"


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "options", "error", "words"),
    [
        (lambda t: t.drop(columns="label"), {}, DataError, ["no label column 'label'", "'signal'"]),
        (lambda t: t.assign(label=np.where(t.index % 7 == 0, 2, t["label"])), {}, DataError,
         ["label column 'label'", "only 0 and 1", "0, 1, 2", "rows 0, 7, 14"]),
        (lambda t: t.assign(label=np.where(t["label"] == 1, "yes", "no")), {}, DataError,
         ["label column 'label'", "0 and 1", "'no'", "'yes'"]),
        (lambda t: t.assign(label=0), {}, DataError,
         ["label column 'label'", "single class", "3,000 rows are 0"]),
        (lambda t: t.assign(label=(t.index < 5).astype(int)), {}, DataError, ["only 5 rows with label 1"]),
        (lambda t: t.assign(label=t["label"].astype(float).where(t.index != 3)), {}, DataError,
         ["label column 'label'", "1 of 3,000 rows have no value", "rows 3"]),
        (lambda t: t[["customer", "country", "empty", "label"]], {"id_column": "customer"}, DataError,
         ["no usable feature column", "'country'", "'FR'", "'empty'"]),
        (lambda t: t, {"id_column": "client_id"}, DataError, ["no id column 'client_id'", "'customer'"]),
        (lambda t: t, {"id_column": "label"}, ConfigError, ["id column and the label", "'label'"]),
    ],
)  # fmt: skip
def test_training_refuses_bad_tables(  # type: ignore[no-untyped-def]
    change, options, error, words, tmp_path: Path, home: tuple[str, Path]
) -> None:
    path = _write(change(planted()), tmp_path / "t.csv")
    with pytest.raises(error) as caught:
        train(path, "refused", home, label="label", **options)
    for word in words:
        assert word in str(caught.value)


def test_training_refuses_bad_files_and_names(tmp_path: Path, home: tuple[str, Path]) -> None:
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(
        ConfigError, match=r"t\.xlsx must end in one of \['\.parquet', '\.csv'\]; got '\.xlsx'"
    ):
        train(tmp_path / "t.xlsx", "m", home, label="label")
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        train(tmp_path / "nope.csv", "m", home, label="label")
    with pytest.raises(ConfigError, match="got 'my model'"):
        train(tmp_path / "nope.csv", "my model", home, label="label")
    with pytest.raises(ConfigError, match="nba-dental_checkup"):
        train(tmp_path / "nope.csv", "nba-dental_checkup", home, label="label")


def test_scoring_names_every_missing_column(
    trained: tt.TableTraining, home: tuple[str, Path], tmp_path: Path
) -> None:
    path = _write(planted(50).drop(columns=["customer", "region", "opened"]), tmp_path / "t.csv")
    with pytest.raises(DataError) as caught:
        tt.score_table(path, "planted", tmp_path / "s.csv", tracking_uri=home[0])
    assert "lacks 3 columns" in str(caught.value)
    assert all(f"'{c}'" in str(caught.value) for c in ("customer", "region", "opened"))
    assert not (tmp_path / "s.csv").exists()


def test_scoring_refuses_a_value_of_the_wrong_type(
    trained: tt.TableTraining, home: tuple[str, Path], tmp_path: Path
) -> None:
    table = planted(50).astype({"signal": object})
    table.loc[[4, 9], "signal"] = "inconnu"
    path = _write(table, tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"column 'signal' .* numbers .* 2 rows .* rows 4, 9: 'inconnu'"):
        tt.score_table(path, "planted", tmp_path / "s.csv", tracking_uri=home[0])


def test_scoring_an_unknown_model_or_version(
    trained: tt.TableTraining, planted_csv: Path, home: tuple[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(
        ConfigError, match=r"no model named 'plant'.*table models registered there: .*planted"
    ):
        tt.score_table(planted_csv, "plant", tmp_path / "s.csv", tracking_uri=home[0])
    with pytest.raises(
        ConfigError, match=r"no version or alias 'champion'; versions: 1.*aliases: challenger"
    ):
        tt.score_table(planted_csv, "planted", tmp_path / "s.csv", version="champion", tracking_uri=home[0])
    with pytest.raises(ConfigError, match='got "it\'s"'):
        tt.score_table(planted_csv, "it's", tmp_path / "s.csv", tracking_uri=home[0])
    assert not (tmp_path / "s.csv").exists()


def test_a_failed_write_leaves_nothing(
    trained: tt.TableTraining, planted_csv: Path, home: tuple[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def half_then_fail(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        tt.score_table(planted_csv, "planted", tmp_path / "s.parquet", tracking_uri=home[0])
    assert list(tmp_path.iterdir()) == []


def test_the_commands(
    planted_csv: Path, home: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nba.cli import app
    from nba.settings import get_settings

    monkeypatch.chdir(tmp_path)  # a new experiment's artifacts would go to ./mlruns
    monkeypatch.setenv("NBA_MLFLOW_TRACKING_URI", home[0])
    get_settings(fresh=True)
    try:
        args = ["train-table", str(planted_csv), "--label", "label", "--threads", "1"]
        run = CliRunner().invoke(app, [*args, "--name", "cli"])
        assert run.exit_code == 0, run.output
        assert "cli v1 (alias challenger)" in run.output and "region (categorical, 4 levels)" in run.output
        scored = CliRunner().invoke(app, ["score-table", str(planted_csv), "--name", "cli", "--out", "s.csv"])
        assert scored.exit_code == 0, scored.output
        assert list(pd.read_csv(tmp_path / "s.csv").columns[:2]) == ["row", "score"]
        refused = CliRunner().invoke(
            app, ["train-table", str(planted_csv), "--label", "signal", "--name", "x"]
        )
        assert refused.exit_code == 2 and "label column 'signal'" in refused.output
    finally:
        monkeypatch.delenv("NBA_MLFLOW_TRACKING_URI")
        get_settings(fresh=True)
