"""`airflow standalone` on a free local port (scheduler, API server, LocalExecutor; started shortly before these
tests and stopped at the session's end, tests/conftest.py `Services`): trigger lakewatch_score through the REST
API with a conf, wait for the run to succeed, check every output it wrote and the summary it returns
(tests/orchestration/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakewatch.lakehouse.tables import EVENTS, QUARANTINE, SCORES
from lakewatch.orchestration.runs_view import read_runs
from lakewatch.orchestration.spark_jobs import run_id_for
from tests.services import call, wait_for

pytestmark = pytest.mark.airflow_server


@pytest.mark.airflow_server(first=True)
def test_trigger_score_dag_through_the_rest_api(score_dag_run):
    """Triggered with a conf, the run is accepted with that conf (it runs while the cluster test does)."""
    conf, run = score_dag_run
    assert run["conf"] == conf and run["dag_id"] == "lakewatch_score"


def test_the_triggered_run_succeeds_and_writes_every_output(spark, trained_lake, standalone, score_dag_run):
    settings, _, _ = trained_lake
    base, token, log = standalone
    _, run = score_dag_run
    path = f"/api/v2/dags/lakewatch_score/dagRuns/{run['dag_run_id']}"
    state = wait_for("the run to finish", lambda: (s := call(base, path, token)["state"]) in ("success", "failed") and s, 600)
    assert state == "success", Path(log).read_text()[-5000:]
    tasks = call(base, f"{path}/taskInstances", token)["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert states["score"] == states["summary"] == "success" and states["evaluate"] == "skipped"

    runs = {r["job"]: r for r in read_runs(settings, [run_id_for(run["dag_run_id"], t) for t in ("score", "evaluate")])}
    assert {j: r["status"] for j, r in runs.items()} == {"score": "success"}
    score = runs["score"]
    day = F.col("logical_date") == F.lit("2026-03-04").cast("date")
    read = lambda t: spark.read.format("delta").load(t.path(settings)).where(day)  # noqa: E731
    assert read(SCORES).count() == score["rows_scored"] == score["rows_in"] - score["rows_quarantined"] > 0
    assert read(QUARANTINE).count() == score["rows_quarantined"]
    assert read(EVENTS).count() == score["n_events"]
    assert score["report_path"].endswith(".html")
    summary = call(base, f"{path}/taskInstances/summary/xcomEntries/return_value", token)["value"]
    assert summary["rows_scored"] == score["rows_scored"] and summary["status"] == "success"
    assert summary["view"] == f"{base}/lakewatch/runs/{score['run_id']}"  # the run's page in the Lakewatch view
