"""lakewatch_score run end to end by Airflow (`airflow dags test`), spark-submit in local mode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lakewatch.lakehouse.tables import EVALUATION, EVENTS, QUARANTINE, SCORES
from lakewatch.orchestration.runs_view import read_runs
from lakewatch.orchestration.spark_jobs import run_id_for
from pyspark.sql import functions as F


def test_score_dag_writes_every_output(spark, trained_lake, airflow_env):
    settings, _, _ = trained_lake
    conf = {"dataset": "demo_metrics", "start": "2026-03-05", "end": "2026-03-06"}
    out = subprocess.run(
        ["airflow", "dags", "test", "lakewatch_score", "2026-03-06", "--conf", json.dumps(conf)],
        env=airflow_env, capture_output=True, text=True, timeout=900,
    )
    log = out.stdout + out.stderr
    (Path(airflow_env["AIRFLOW_HOME"]) / "dags-test.log").write_text(log)
    assert out.returncode == 0, log[-5000:]
    run_ids = sorted({line.split("--run-id ")[1].split()[0] for line in log.splitlines() if "--run-id af-" in line})
    assert [r.rsplit("-", 1)[1] for r in run_ids] == ["evaluate", "score"]  # one validation: inside score
    runs = {r["job"]: r for r in read_runs(settings, run_ids)}
    assert {j: r["status"] for j, r in runs.items()} == {"score": "success", "evaluate": "success"}

    score = runs["score"]
    day = F.col("logical_date") == F.lit("2026-03-05").cast("date")
    read = lambda t: spark.read.format("delta").load(t.path(settings)).where(day)  # noqa: E731
    assert read(SCORES).count() == score["rows_scored"] == score["rows_in"] - score["rows_quarantined"]
    assert read(QUARANTINE).count() == score["rows_quarantined"]
    assert read(EVENTS).count() == score["n_events"]
    assert read(EVALUATION).where("metric = 'f1'").count() == 1
    assert score["report_path"].endswith(".html")
    assert "DRIFT ALERT" in log or "drift_alert: []" in log
    assert f"rows_scored: {score['rows_scored']}" in log  # the summary task's output
    assert run_id_for("x", "score") == "af-x-score"


def test_a_missing_spark_connection_fails_at_once_without_retries(trained_lake, airflow_env):
    env = {k: v for k, v in airflow_env.items() if k != "AIRFLOW_CONN_SPARK_LOCAL"}
    conf = {"dataset": "demo_metrics", "start": "2026-03-04", "end": "2026-03-05"}
    out = subprocess.run(
        ["airflow", "dags", "test", "lakewatch_score", "2026-03-07", "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    log = out.stdout + out.stderr
    assert out.returncode != 0
    message = "the Spark connection 'spark_local' is not defined: set AIRFLOW_CONN_SPARK_LOCAL"
    assert log.count(message) >= 1 and "Not retried" in log
    assert "--master yarn" not in log and "up_for_retry" not in log.lower().replace(" ", "_")
