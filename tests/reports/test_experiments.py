"""The experiment report: two training runs side by side, and the errors that name what is wrong."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports.experiments import experiment_report
from reports.html import plotly_js
from reports.offline import client_for, latest_train_runs
from reports.sources import NotFoundError, ReportError, Sources
from tests.reports.conftest import ReportWorld

MOVED = ("dental_checkup", "prevoyance")
SECOND = "report-test-b"


@dataclass(frozen=True)
class TwoRuns:
    tracking_uri: str
    first: str
    second: str
    child: str
    """A child run of the first train run (dental_checkup)."""
    shap_feature: str
    """The feature whose dental_checkup importance the second run doubles."""


def children(client: Any, parent: str) -> dict[str, Any]:
    ids = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(ids, filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    return {r.data.tags["action_id"]: r for r in found}


@pytest.fixture(scope="module")
def two_runs(report_world: ReportWorld, tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """A copy of the served MLflow store plus a second train run of two actions: ROC-AUC +0.01,
    one SHAP importance doubled, no logged model (so no reliability curve)."""
    home = tmp_path_factory.mktemp("mlflow-two-runs")
    shutil.copy(report_world.served.tracking_uri.removeprefix("sqlite:///"), home / "mlflow.db")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = client_for(uri)
    first = latest_train_runs(client, [e.experiment_id for e in client.search_experiments()], 1)[0]
    experiment = client.create_experiment(SECOND, artifact_location=(home / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="train", tags={"data_fingerprint": "second"})
    client.log_param(parent.info.run_id, "model.num_leaves", 7)
    feature = ""
    with tempfile.TemporaryDirectory() as tmp:
        for action, old in children(client, first.info.run_id).items():
            if action not in MOVED:
                continue
            child = client.create_run(
                experiment,
                run_name=action,
                tags={"mlflow.parentRunId": parent.info.run_id, "action_id": action},
            )
            for name, value in old.data.metrics.items():
                client.log_metric(child.info.run_id, name, value + (0.01 if name == "roc_auc" else 0.0))
            folder = Path(tmp) / action
            for name in ("lift_curve.csv", "shap_importance.csv", "features.json"):
                client.download_artifacts(old.info.run_id, name, str(folder))
            if action == "dental_checkup":
                shap = pd.read_csv(folder / "shap_importance.csv")
                feature = str(shap.loc[0, "feature"])
                shap.loc[0, "mean_abs_shap"] *= 2
                shap.to_csv(folder / "shap_importance.csv", index=False)
            client.log_artifacts(child.info.run_id, str(folder))
            client.set_terminated(child.info.run_id)
    client.set_terminated(parent.info.run_id)
    dental = children(client, first.info.run_id)["dental_checkup"].info.run_id
    return TwoRuns(uri, first.info.run_id, parent.info.run_id, dental, feature)


@pytest.fixture
def two_sources(report_world: ReportWorld, two_runs: TwoRuns) -> Iterator[Sources]:
    opened = report_world.sources(tracking_uri=two_runs.tracking_uri)
    yield opened
    opened.close()


def test_runs_side_by_side_with_their_differences(two_sources: Sources, two_runs: TwoRuns) -> None:
    report = experiment_report(two_sources, runs=[two_runs.first, two_runs.second])
    first, second = report.runs
    assert (first.run_id, second.run_id) == (two_runs.first, two_runs.second)
    assert len(first.actions) == 16 and sorted(second.actions) == sorted(MOVED)
    for action in MOVED:
        gained = second.actions[action].metrics["roc_auc"] - first.actions[action].metrics["roc_auc"]
        assert gained == pytest.approx(0.01)
    assert first.actions["dental_checkup"].reliability is not None
    assert len(first.actions["dental_checkup"].reliability) == 10
    assert second.actions["dental_checkup"].reliability is None
    assert second.actions["dental_checkup"].problems == [
        "no reliability curve: its train run has no test_frame.parquet"
    ]
    page = report.html
    assert f"Δ {second.label}" in page and "+0.010" in page and two_runs.shap_feature in page
    assert "<script src" not in page.lower() and page.count(str(plotly_js())[:500]) == 1


def test_an_experiment_names_its_latest_train_run(two_sources: Sources, two_runs: TwoRuns) -> None:
    report = experiment_report(two_sources, experiments=[SECOND], with_online=False)
    assert [r.run_id for r in report.runs] == [two_runs.second] and report.online is None


def test_without_names_the_two_latest_train_runs_are_compared(
    two_sources: Sources, two_runs: TwoRuns
) -> None:
    report = experiment_report(two_sources, with_online=False, reliability=False)
    assert report.runs[-1].run_id == two_runs.second and len(report.runs) == 2
    assert "No run named" in report.html


def test_unknown_names_are_refused_with_what_exists(two_sources: Sources, two_runs: TwoRuns) -> None:
    with pytest.raises(NotFoundError, match="unknown run id 'nope'"):
        experiment_report(two_sources, runs=["nope"])
    with pytest.raises(NotFoundError, match=rf"unknown experiment 'nope' .*'{SECOND}'"):
        experiment_report(two_sources, experiments=["nope"])
    with pytest.raises(ReportError, match=f"child run 'dental_checkup' of train run {two_runs.first}"):
        experiment_report(two_sources, runs=[two_runs.child])


def test_online_only_report_reads_no_mlflow(sources: Sources) -> None:
    sources.tracking_uri = "sqlite:////nonexistent/mlflow.db"
    report = experiment_report(sources, offline=False)
    assert report.runs == [] and report.online is not None and report.online.exposures > 0
    assert 'id="verdict"' in report.html and not math.isnan(len(report.html))
