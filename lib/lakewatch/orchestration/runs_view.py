"""What a DAG run shows of the jobs it ran: their `runs` rows, its summary, and failures the jobs could not record.

Read and written through delta-rs (lakewatch.lakehouse.delta_rs) for any storage of the lakehouse, without a
Spark session. A `runs` table that cannot be read is an error (a drift gate that read nothing would be green).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from lakewatch.config import Settings
from lakewatch.lakehouse import delta_rs
from lakewatch.lakehouse.runs import json_safe
from lakewatch.orchestration.spark_jobs import run_id_for
from lakewatch.ui.links import run_url

log = logging.getLogger("lakewatch.airflow")


def read_runs(settings: Settings, run_ids: list[str]) -> list[dict[str, Any]]:
    """The runs rows of these run ids, newest first."""
    pdf = delta_rs.read_pandas(settings, "runs", filters=[("run_id", "in", list(run_ids))] if run_ids else None)
    if pdf.empty:
        return []
    pdf = pdf.sort_values("started_at", ascending=False)
    rows = json.loads(pdf.to_json(orient="records", date_format="iso"))
    return [{k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in r.items()} for r in rows]


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
    try:
        if any(r["status"] == "failed" for r in read_runs(settings, [run_id])):
            return  # the job recorded its own failure, with the library's error
        now = datetime.now(timezone.utc)
        delta_rs.append_rows(settings, "runs", [{
            "run_id": run_id, "job": task_id, "dataset": params.get("dataset"), "status": "failed", "error": error,
            "started_at": now, "ended_at": now,
            "details": json.dumps({"airflow_run_id": airflow_run, "source": "airflow"}),
        }])
    except Exception as exc:  # the task already failed: its log must say what, even when runs is unreachable
        log.error("could not record the failure in the runs table (%s): %s", settings.lakehouse, exc)


def summarise_run(settings: Settings, airflow_run_id: str, interval: dict[str, str], dataset: str,
                  view_base: str | None = None) -> dict[str, Any]:
    """The DAG run's summary: counts, anomalies, drift and where the outputs are (shown as XCom and in the log),
    with the run's page in the Lakewatch view when the API server's address (view_base) is given."""
    newest_first = read_runs(settings, [run_id_for(airflow_run_id, t) for t in ("score", "evaluate")])
    rows = {r["job"]: r for r in reversed(newest_first)}  # a retried task's newest row wins
    score = rows.get("score", {})
    details = json.loads(score.get("details") or "{}")
    drift = details.get("drift", {})
    evaluation = json.loads(rows.get("evaluate", {}).get("details") or "{}").get("metrics", {})
    status = score.get("status", "missing")
    return json_safe({
        "dataset": dataset,
        "interval": f"[{interval['start']}, {interval['end']})",
        "status": status + (" (incomplete: the run did not finish)" if status == "running" else ""),
        "note": details.get("note", "-"),
        "model": f"{score.get('model_name')} v{score.get('model_version')}",
        "rows_in": score.get("rows_in"),
        "rows_scored": score.get("rows_scored"),
        "rows_quarantined": score.get("rows_quarantined"),
        "rows_anomalous": score.get("rows_anomalous"),
        "events": score.get("n_events"),
        "drift_alert": drift.get("alert", []),
        "drift_warn": drift.get("warn", []),
        "anomaly_rate": drift.get("anomaly_rate", "-"),
        "evaluation": {k: evaluation[k] for k in ("precision", "recall", "f1", "pr_auc", "event_recall") if k in evaluation},
        "report": score.get("report_path"),
        "view": run_url(view_base, score["run_id"]) if view_base and score.get("run_id") else None,
        "tables": settings.lakehouse,
        "query": f"lakewatch sql \"SELECT * FROM events WHERE run_id = '{score.get('run_id')}'\"",
    })
