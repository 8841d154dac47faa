"""What the Airflow DAGs share: intervals of runs, spark-submit tasks, the failure callback, run summaries.

Parsing a DAG must stay cheap: nothing here imports pyspark or torch at module level; what reads the
lakehouse at run time does it through delta-rs (deltalake), without a Spark session.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lakewatch.config import PROJECT_ROOT, Settings

log = logging.getLogger("lakewatch.airflow")
JOBS_DIR = PROJECT_ROOT / "jobs"


def resolve_interval(
    start: str | None, end: str | None, interval_start: datetime | None, interval_end: datetime | None,
    logical_date: datetime | None,
) -> dict[str, str]:
    """The run's [start, end) in whole UTC days: the params if given, else the run's data interval.

    A zero-length data interval (Airflow 3's cron-trigger timetables, manual runs) stands for the day it
    starts, so that a daily run always scores a whole day.
    """
    if start:
        s = date.fromisoformat(start[:10])
        e = date.fromisoformat(end[:10]) if end else s + timedelta(days=1)
    else:
        begin = interval_start or logical_date
        if begin is None:
            raise ValueError("the run has neither a data interval nor a logical date: pass params start/end")
        s = begin.astimezone(timezone.utc).date()
        e = interval_end.astimezone(timezone.utc).date() if interval_end else s
        if e <= s:
            e = s + timedelta(days=1)
    if e <= s:
        raise ValueError(f"empty interval: end {e} is not after start {s}")
    return {"start": s.isoformat(), "end": e.isoformat()}


def lookback_interval(logical_date: datetime, days: int) -> dict[str, str]:
    """The `days` whole UTC days before the logical date: what a scheduled training run learns from."""
    end = logical_date.astimezone(timezone.utc).date()
    return {"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()}


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
    """Arguments of a SparkSubmitOperator that runs jobs/<job>.py with the project's jars and Python."""
    jars = sorted(str(p) for p in settings.jars_path().glob("*.jar"))
    python = sys.executable
    return {
        "application": str(JOBS_DIR / f"{job}.py"),
        "conn_id": settings.airflow.spark_conn_id,
        "name": f"lakewatch-{job}",
        "application_args": args,
        "jars": ",".join(jars) or None,
        "conf": {
            "spark.pyspark.python": python,
            "spark.pyspark.driver.python": python,
            "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
            "spark.ui.showConsoleProgress": "false",
        },
        "env_vars": {"LAKEWATCH_CONF": settings.source or settings.profile, "LAKEWATCH_LAKEHOUSE": settings.lakehouse,
                     "PYSPARK_PYTHON": python},
    }


def run_id_for(airflow_run_id: str, task: str) -> str:
    """The lakewatch run id of one task of one DAG run: the same on a retry, safe in file names."""
    return f"af-{safe_name(airflow_run_id)}-{task}"


def run_id_template(task: str) -> str:
    """run_id_for as a Jinja template of the task's arguments (Airflow run ids hold ':' and '+')."""
    return "af-{{ run_id | replace(':', '-') | replace('+', '-') }}-" + task


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def read_runs(settings: Settings, run_ids: list[str]) -> list[dict[str, Any]]:
    """The runs rows of these run ids, newest first, read with delta-rs (no Spark)."""
    from deltalake import DeltaTable

    path = _local_table(settings, "runs")
    if path is None or not (path / "_delta_log").is_dir():
        return []
    pdf = DeltaTable(str(path)).to_pandas()
    pdf = pdf[pdf["run_id"].isin(run_ids)].sort_values("ended_at", ascending=False)
    rows = json.loads(pdf.to_json(orient="records", date_format="iso"))
    return [{k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in r.items()} for r in rows]


def _local_table(settings: Settings, name: str) -> Path | None:
    return None if "://" in settings.lakehouse else Path(settings.lakehouse) / name


def record_failure(settings: Settings, context: dict[str, Any]) -> None:
    """on_failure_callback: say what failed in the task log, and in `runs` unless the job already did."""
    ti = context.get("ti") or context.get("task_instance")
    task_id = getattr(ti, "task_id", "?")
    dag_run = context.get("dag_run")
    airflow_run = getattr(dag_run, "run_id", "?")
    params = context.get("params") or {}
    error = str(context.get("exception") or "task failed")[:2000]
    run_id = run_id_for(airflow_run, task_id)
    log.error("lakewatch task %s of run %s failed (dataset %s): %s", task_id, airflow_run, params.get("dataset"), error)
    if any(r["status"] == "failed" for r in read_runs(settings, [run_id])):
        return  # the job recorded its own failure, with the library's error
    path = _local_table(settings, "runs")
    if path is None or not (path / "_delta_log").is_dir():
        log.error("runs table not reachable from the Airflow worker (%s): failure kept in this log only", settings.lakehouse)
        return
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    schema = DeltaTable(str(path)).schema().to_arrow()
    now = datetime.now(timezone.utc)
    row = {f.name: None for f in schema}
    row.update(run_id=run_id, job=task_id, dataset=params.get("dataset"), status="failed", error=error,
               started_at=now, ended_at=now, details=json.dumps({"airflow_run_id": airflow_run, "source": "airflow"}))
    table = pa.Table.from_pylist([row], schema=pa.schema(schema))
    write_deltalake(str(path), table, mode="append")


def summarise_run(settings: Settings, airflow_run_id: str, interval: dict[str, str], dataset: str) -> dict[str, Any]:
    """The DAG run's summary: counts, anomalies, drift and where the outputs are (shown as XCom and in the log)."""
    rows = {r["job"]: r for r in read_runs(settings, [run_id_for(airflow_run_id, t) for t in ("validate", "score", "evaluate")])}
    score = rows.get("score", {})
    details = json.loads(score.get("details") or "{}")
    drift = details.get("drift", {})
    evaluation = json.loads(rows.get("evaluate", {}).get("details") or "{}").get("metrics", {})
    return {
        "dataset": dataset,
        "interval": f"[{interval['start']}, {interval['end']})",
        "status": score.get("status", "missing"),
        "model": f"{score.get('model_name')} v{score.get('model_version')}",
        "rows_in": score.get("rows_in"),
        "rows_scored": score.get("rows_scored"),
        "rows_quarantined": score.get("rows_quarantined"),
        "rows_anomalous": score.get("rows_anomalous"),
        "events": score.get("n_events"),
        "drift_alert": drift.get("alert", []),
        "drift_warn": drift.get("warn", []),
        "evaluation": {k: evaluation[k] for k in ("precision", "recall", "f1", "pr_auc", "event_recall") if k in evaluation},
        "report": score.get("report_path"),
        "tables": settings.lakehouse,
        "query": f"lakewatch sql \"SELECT * FROM events WHERE run_id = '{score.get('run_id')}'\"",
    }
