"""How the DAGs run Lakewatch jobs: spark-submit arguments, run ids, retries and Params (no pyspark here)."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Any

from lakewatch.config import Settings
from lakewatch.lakehouse.session import launch_options


def default_args(settings: Settings) -> dict[str, Any]:
    """Owner, retries with exponential back-off, and a timeout for every task of the project's DAGs."""
    af = settings.airflow
    return {
        "owner": af.owner,
        "retries": af.retries,
        "retry_delay": timedelta(seconds=af.retry_delay_s),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(seconds=af.execution_timeout_s),
    }


def interval_params(settings: Settings, what: str) -> dict[str, Any]:
    """The Params both DAGs take: the dataset and an optional interval."""
    from airflow.sdk import Param

    return {
        "dataset": Param(settings.airflow.default_dataset, type="string", description="a name in conf/datasets/ or a spec path"),
        "start": Param(None, type=["null", "string"], format="date", description=f"first day {what}"),
        "end": Param(None, type=["null", "string"], format="date", description="day after the last (exclusive)"),
    }


def spark_submit_kwargs(settings: Settings, job: str, args: list[str]) -> dict[str, Any]:
    """Arguments of a SparkSubmitOperator that runs <jobs_dir>/<job>.py with the project's jars and Python."""
    jars = sorted(str(p) for p in settings.jars_path().glob("*.jar"))
    python = sys.executable
    return {
        "application": str(settings.path(settings.jobs_dir) / f"{job}.py"),
        "conn_id": settings.airflow.spark_conn_id,
        "name": f"lakewatch-{job}",
        "application_args": args,
        "jars": ",".join(jars) or None,
        "conf": {
            **launch_options(settings),
            "spark.pyspark.python": python,
            "spark.pyspark.driver.python": python,
            "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
            "spark.ui.showConsoleProgress": "false",
        },
        "env_vars": {"LAKEWATCH_CONF": settings.source or settings.profile, "LAKEWATCH_LAKEHOUSE": settings.lakehouse,
                     "LAKEWATCH_HOME": settings.home, "PYSPARK_PYTHON": python},
    }


def run_id_for(airflow_run_id: str, task: str) -> str:
    """The lakewatch run id of one task of one DAG run: the same on a retry, safe in file names."""
    return f"af-{safe_name(airflow_run_id)}-{task}"


def run_id_template(task: str) -> str:
    """run_id_for as a Jinja template of the task's arguments (Airflow run ids hold ':' and '+')."""
    return "af-{{ run_id | replace(':', '-') | replace('+', '-') }}-" + task


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def connection_env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"
