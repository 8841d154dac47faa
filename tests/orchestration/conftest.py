"""Airflow for the DAG runs of these tests: its own home and SQLite database, the project's DAG folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import subprocess_env

DAGS = Path(__file__).resolve().parents[2] / "dags"
SPARK_CONN = '{"conn_type": "spark", "host": "local[2]"}'


@pytest.fixture(scope="session")
def airflow_env(trained_lake, tmp_path_factory):
    _, _, profile = trained_lake
    home = tmp_path_factory.mktemp("airflow-home")
    env = subprocess_env(
        profile,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW_CONN_SPARK_LOCAL=SPARK_CONN,
    )
    out = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return env
