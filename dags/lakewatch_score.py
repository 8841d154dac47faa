"""lakewatch_score: score one interval of a dataset (validation included), check drift, evaluate, summarise.

Scheduled daily for the UTC day that just ended (schedule, start date and catch-up from the profile's
`airflow` section); a backfill scores each past day once, and a rerun of a day replaces its outputs:

    airflow backfill create --dag-id lakewatch_score --from-date 2026-03-01 --to-date 2026-03-07

Trigger it by hand with Params `dataset`, `start`, `end`, `model_version`:

    airflow dags trigger lakewatch_score --conf '{"dataset": "demo_metrics", "start": "2026-03-09", "end": "2026-03-10"}'
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

from airflow.sdk import Asset, Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from airflow.timetables.interval import CronDataIntervalTimetable

from lakewatch.config import load_settings
from lakewatch.orchestration.intervals import resolve_interval
from lakewatch.orchestration.operators import LakewatchSparkSubmitOperator
from lakewatch.orchestration.runs_view import record_failure, summarise_run
from lakewatch.orchestration.spark_jobs import default_args, interval_params, run_id_template, spark_submit_kwargs
from lakewatch.ui.links import api_base_url

SETTINGS = load_settings()
AF = SETTINGS.airflow
SCORES, EVENTS, DRIFT_ALERT = Asset("lakewatch_scores"), Asset("lakewatch_events"), Asset("lakewatch_drift_alert")
COMMON_ARGS = [
    "--dataset", "{{ params.dataset }}",
    "--start", "{{ ti.xcom_pull(task_ids='interval')['start'] }}",
    "--end", "{{ ti.xcom_pull(task_ids='interval')['end'] }}",
]


def spark_task(job: str, doc: str, extra: list[str] | None = None, **kwargs) -> LakewatchSparkSubmitOperator:
    """One Spark job of this DAG, through spark-submit on the configured Spark connection."""
    args = [*COMMON_ARGS, "--run-id", run_id_template(job), *(extra or [])]
    return LakewatchSparkSubmitOperator(
        task_id=job, doc_md=doc, on_failure_callback=partial(record_failure, SETTINGS),
        **spark_submit_kwargs(SETTINGS, job, args), **kwargs,
    )


@dag(
    dag_id="lakewatch_score",
    description="Score one interval of a dataset with its production model; write scores, events, drift.",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable(AF.score_schedule, timezone="UTC") if AF.score_schedule else None,
    start_date=datetime.fromisoformat(AF.start_date).replace(tzinfo=timezone.utc),
    catchup=AF.catchup,
    max_active_runs=2,
    tags=["lakewatch", "scoring", "spark"],
    params={
        **interval_params(SETTINGS, "to score (default: the run's data interval)"),
        "model_version": Param(None, type=["null", "integer"], description="score with this version, not production"),
    },
    default_args=default_args(SETTINGS),
)
def lakewatch_score() -> None:
    @task(doc_md="The run's interval in whole UTC days: the Params, else the run's data interval.")
    def interval() -> dict[str, str]:
        ctx = get_current_context()
        p = ctx["params"]
        return resolve_interval(p.get("start"), p.get("end"), ctx.get("data_interval_start"),
                                ctx.get("data_interval_end"), ctx.get("logical_date"))

    score = spark_task(
        "score",
        "Validate the interval (bad rows to quarantine, with their reason) and score its valid rows with the "
        "production model (or `model_version`): writes quarantine, scores, events, drift, a runs row and the "
        "HTML report.",
        ["--model-version={{ params.model_version if params.model_version is not none else '' }}"],
        outlets=[SCORES, EVENTS],
    )
    evaluate = spark_task("evaluate", "Compare the scores with the dataset's labels; writes `evaluation`.")

    @task.short_circuit(doc_md="Evaluate only datasets that have a labels table.", ignore_downstream_trigger_rules=False)
    def has_labels() -> bool:
        from lakewatch.data.spec import load_dataset_spec

        spec = load_dataset_spec(get_current_context()["params"]["dataset"], SETTINGS)
        return spec.labels is not None

    @task(doc_md="Drift of this run (features in warn / alert), from the score job's runs row.")
    def drift_check() -> dict:
        ctx = get_current_context()
        s = summarise_run(SETTINGS, ctx["run_id"], ctx["ti"].xcom_pull(task_ids="interval"), ctx["params"]["dataset"])
        return {"alert": s["drift_alert"], "warn": s["drift_warn"]}

    @task(doc_md="Red when a feature (or the score's distribution) drifts past its alert threshold: the scores "
                 "are written, but look at it. An unusual anomaly rate is reported in the summary, not here.",
          retries=0)
    def drift_gate(drift: dict) -> None:
        if drift["alert"]:
            raise AirflowFailException(f"DRIFT ALERT on {', '.join(drift['alert'])}: see the run report and the drift table")

    @task.short_circuit(doc_md="Retrain on drift only if drift.retrain_on_alert is set in the profile.")
    def should_retrain(drift: dict) -> bool:
        return bool(drift["alert"]) and SETTINGS.drift.retrain_on_alert

    @task(outlets=[DRIFT_ALERT], doc_md="Emit the drift-alert Asset event: lakewatch_train is scheduled on it.")
    def request_retraining() -> None:
        pass

    @task(trigger_rule=TriggerRule.ALL_DONE, doc_md="The run's counts, anomalies, drift and report location (XCom).")
    def summary() -> dict:
        ctx = get_current_context()
        s = summarise_run(SETTINGS, ctx["run_id"], ctx["ti"].xcom_pull(task_ids="interval"), ctx["params"]["dataset"],
                          view_base=api_base_url())
        for key, value in s.items():
            print(f"{key:>17}: {value}")
        return s

    drift, labels, done = drift_check(), has_labels(), summary()
    interval() >> score >> [drift, labels]
    labels >> evaluate >> done
    drift_gate(drift) >> done
    should_retrain(drift) >> request_retraining()


lakewatch_score()
