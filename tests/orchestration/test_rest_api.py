"""`airflow standalone` on a free local port (scheduler, API server, LocalExecutor; started with the session and
stopped at its end by tests/services.py): trigger lakewatch_score through the REST API with a conf, wait for the
run to succeed, check every output it wrote and the summary it returns."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakewatch.lakehouse.tables import EVENTS, QUARANTINE, SCORES
from lakewatch.orchestration.runs_view import read_runs
from lakewatch.orchestration.spark_jobs import run_id_for
from tests.services import AIRFLOW_PASSWORD

pytestmark = pytest.mark.airflow_server


def call(base: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, OSError, KeyError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}: {last}")


@pytest.fixture(scope="module")
def standalone(services):
    """`airflow standalone`, started in the background at the start of the session (tests/services.py)."""
    started = services["airflow"]
    base = started.info["base"]
    alive = lambda: started.proc.poll() is None and call(base, "/api/v2/monitor/health")  # noqa: E731
    wait_for("the API server", alive, 240)
    token = call(base, "/auth/token", body={"username": "admin", "password": AIRFLOW_PASSWORD})["access_token"]
    return base, token, started.log


def test_trigger_score_dag_through_the_rest_api(spark, trained_lake, standalone, tmp_path):
    """A spec without labels (the same data and model name) keeps the run to one Spark job: `evaluate` is
    short-circuited (evaluate through Airflow runs in `make demo`; the job itself is tested in process)."""
    settings, spec, _ = trained_lake
    base, token, log = standalone
    spec_file = tmp_path / "demo_metrics_unlabeled.yaml"
    spec_file.write_text(json.dumps(spec.model_dump(mode="json", exclude_none=True, exclude={"labels"})))
    wait_for("the DAG to be parsed", lambda: call(base, "/api/v2/dags/lakewatch_score", token)["dag_id"], 240)
    conf = {"dataset": str(spec_file), "start": "2026-03-04", "end": "2026-03-05"}
    run = call(base, "/api/v2/dags/lakewatch_score/dagRuns", token, {"logical_date": None, "conf": conf})
    assert run["conf"] == conf
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
