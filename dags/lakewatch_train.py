"""lakewatch_train: train a model on recent valid data and register it through the registry's rules.

Weekly on schedule, on a drift-alert Asset event from lakewatch_score, or by hand with Params `dataset`,
`start`, `end`, `model`. The first version of a model becomes production; later versions are registered as
candidates, to be promoted with `lakewatch models promote NAME VERSION` (or rolled back with
`lakewatch models rollback NAME`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import partial

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from lakewatch.config import load_settings
from lakewatch.orchestration.intervals import lookback_interval, resolve_interval
from lakewatch.orchestration.operators import LakewatchSparkSubmitOperator
from lakewatch.orchestration.runs_view import read_runs, record_failure
from lakewatch.orchestration.spark_jobs import (
    default_args,
    interval_params,
    run_id_for,
    run_id_template,
    spark_submit_kwargs,
)

SETTINGS = load_settings()
AF = SETTINGS.airflow
DRIFT_ALERT = Asset("lakewatch_drift_alert")


@dag(
    dag_id="lakewatch_train",
    description="Train, calibrate and register a model for a dataset.",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(AF.train_schedule, timezone="UTC"), assets=DRIFT_ALERT
    ) if AF.train_schedule else DRIFT_ALERT,
    start_date=datetime.fromisoformat(AF.start_date).replace(tzinfo=timezone.utc),
    catchup=AF.catchup,
    max_active_runs=1,
    tags=["lakewatch", "training", "spark"],
    params={
        **interval_params(SETTINGS, "to train on (default: the days before the run)"),
        "model": Param(SETTINGS.training.default_model, type="string", description="the model type"),
    },
    default_args=default_args(SETTINGS),
)
def lakewatch_train() -> None:
    @task(doc_md="Training days: the Params, else the `train_lookback_days` days before the run.")
    def interval() -> dict[str, str]:
        ctx = get_current_context()
        p = ctx["params"]
        if p.get("start"):
            return resolve_interval(p["start"], p.get("end"), None, None, None)
        return lookback_interval(ctx["logical_date"] or ctx["dag_run"].run_after, AF.train_lookback_days)

    args = [
        "--dataset", "{{ params.dataset }}", "--model", "{{ params.model }}",
        "--start", "{{ ti.xcom_pull(task_ids='interval')['start'] }}",
        "--end", "{{ ti.xcom_pull(task_ids='interval')['end'] }}",
        "--run-id", run_id_template("train"),
    ]
    train = LakewatchSparkSubmitOperator(
        task_id="train",
        doc_md="Statistics in Spark, a sample on the driver, fit, calibrate, register (candidate or first production).",
        on_failure_callback=partial(record_failure, SETTINGS),
        **spark_submit_kwargs(SETTINGS, "train", args),
    )

    @task(doc_md="The new version, its stage and metrics, the champion/challenger decision (XCom), and how to "
                 "promote it by hand when it was kept out.")
    def summary() -> dict:
        ctx = get_current_context()
        rows = read_runs(SETTINGS, [run_id_for(ctx["run_id"], "train")])
        run = rows[0] if rows else {}
        version, name = run.get("model_version"), run.get("model_name")
        details = json.loads(run.get("details") or "{}")
        stage = details.get("stage")
        out = {"model": f"{name} v{version}", "status": run.get("status"), "stage": stage,
               "metrics": details.get("metrics"),
               "challenge": {k: details["challenge"][k] for k in ("decision", "vs", "basis", "reasons")}
               if details.get("challenge") else "-",
               "promote": f"lakewatch models promote {name} {version}" if stage == "candidate" else "-"}
        for key, value in out.items():
            print(f"{key:>9}: {value}")
        return out

    interval() >> train >> summary()


lakewatch_train()
