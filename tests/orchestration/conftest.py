"""The session's `airflow standalone` (tests/services.py) and the lakewatch_score run triggered through its REST API.

Both are session-scoped: the run is triggered by the first test that needs it and checked by a later one, while
the Spark cluster test runs in between (tests/conftest.py orders them), so that the two out-of-process jobs overlap.
"""

from __future__ import annotations

import json

import pytest

from tests.services import AIRFLOW_PASSWORD, call, wait_for


@pytest.fixture(scope="session")
def standalone(services) -> tuple[str, str, object]:
    """(base URL, API token, log path) of `airflow standalone`, once its API server answers."""
    started = services["airflow"]
    base = started.info["base"]
    alive = lambda: started.proc.poll() is None and call(base, "/api/v2/monitor/health")  # noqa: E731
    wait_for("the API server", alive, 240)
    token = call(base, "/auth/token", body={"username": "admin", "password": AIRFLOW_PASSWORD})["access_token"]
    return base, token, started.log


@pytest.fixture(scope="session")
def score_dag_run(trained_lake, standalone, tmp_path_factory) -> tuple[dict, dict]:
    """lakewatch_score triggered through the REST API with a conf: (the conf, the DAG run as the API returned it).

    A spec without labels (the same data and model name) keeps the run to one Spark job: `evaluate` is
    short-circuited (evaluate through Airflow runs in `make demo`; the job itself is tested in process)."""
    _, spec, _ = trained_lake
    base, token, _ = standalone
    spec_file = tmp_path_factory.mktemp("rest-api") / "demo_metrics_unlabeled.yaml"
    spec_file.write_text(json.dumps(spec.model_dump(mode="json", exclude_none=True, exclude={"labels"})))
    wait_for("the DAG to be parsed", lambda: call(base, "/api/v2/dags/lakewatch_score", token)["dag_id"], 240)
    conf = {"dataset": str(spec_file), "start": "2026-03-04", "end": "2026-03-05"}
    return conf, call(base, "/api/v2/dags/lakewatch_score/dagRuns", token, {"logical_date": None, "conf": conf})
