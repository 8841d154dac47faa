"""The DAGs' failure callback: what failed goes to `runs` (written with delta-rs, read back by Spark)."""

from datetime import date

from pyspark.sql import functions as F

from lakewatch.data.intervals import Interval
from lakewatch.lakehouse.tables import RUNS
from lakewatch.orchestration.runs_view import record_failure
from lakewatch.orchestration.spark_jobs import run_id_for
from lakewatch.pipeline.validate import run_validate
from tests.data.test_quality import ROWS, SCHEMA
from tests.helpers import small_spec, write_rows


class TaskInstance:
    task_id = "score"


class DagRun:
    run_id = "scheduled__2026-03-04T00:00:00+00:00"


def test_failure_callback_records_the_failed_task(spark, settings):
    write_rows(spark, settings, "small", ROWS, SCHEMA)
    run_validate(spark, settings, small_spec(partition_column="date"), Interval(date(2026, 3, 4), date(2026, 3, 5)))
    context = {"ti": TaskInstance(), "dag_run": DagRun(), "params": {"dataset": "small"},
               "exception": RuntimeError("spark-submit exited with 137")}
    record_failure(settings, context)
    record_failure(settings, context)  # a second callback for the same task run adds nothing
    runs = spark.read.format("delta").load(RUNS.path(settings))
    failed = runs.where(F.col("run_id") == run_id_for(DagRun.run_id, "score")).collect()
    assert len(failed) == 1
    assert failed[0]["status"] == "failed" and "137" in failed[0]["error"] and failed[0]["dataset"] == "small"
    assert runs.count() == 2
