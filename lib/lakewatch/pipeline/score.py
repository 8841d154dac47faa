"""The score job: validate, apply the model through Arrow batches, write scores and events, record the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.dataset import DatasetSpec
from lakewatch.events import event_ids, group_events
from lakewatch.intervals import Interval
from lakewatch.package import check_schema
from lakewatch.pipeline.drift import compute_drift
from lakewatch.pipeline.report import write_report
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.quality import QualityCounts, validate_interval
from lakewatch.registry import load_package, resolve
from lakewatch.runs import RunRecord, new_run_id
from lakewatch.scoring import score_frame
from lakewatch.tables import EVENTS, SCORES, commit_metrics, interval_predicate, replace_interval

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_score(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval,
    model_name: str | None = None, model_version: int | None = None, run_id: str | None = None,
) -> RunRecord:
    """Score [start, end) of a dataset; a rerun replaces exactly that interval in every output table."""
    name = model_name or spec.name
    record = RunRecord(run_id or new_run_id("score"), "score", spec.name, interval.start, interval.end, model_name=name)
    with tracked_run(spark, settings, record):
        # the package is checked before anything is written
        ref = resolve(spark, settings, name, model_version)
        record.model_version = ref.version
        package = load_package(spark, settings, ref)
        check_schema(package, spec)
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.scoring.batch_size))

        record.input_table = spec.table_path(settings)
        validated = validate_interval(spark, settings, spec, interval, record.run_id)
        record.input_version = validated.input_version
        record.rows_in, record.rows_valid = validated.counts.rows_in, validated.counts.rows_valid
        record.rows_quarantined = validated.counts.rows_quarantined
        sc = settings.scoring
        scored = score_frame(validated.valid, package, sc.device, sc.threads_per_task, sc.top_features).select(
            "*",
            F.lit(spec.name).alias("dataset"),
            F.lit(None).cast("double").alias("uncertainty"),
            F.lit(ref.name).alias("model_name"),
            F.lit(ref.version).alias("model_version"),
            F.lit(record.run_id).alias("run_id"),
        )
        replace_interval(spark, settings, SCORES, scored, spec.name, interval.start, interval.end, record.run_id)
        record.rows_scored = int(commit_metrics(spark, SCORES.path(settings), record.run_id).get("numOutputRows", 0))
        QualityCounts(record.rows_in, record.rows_scored, record.rows_quarantined).check()

        written = spark.read.format("delta").load(SCORES.path(settings)).where(
            interval_predicate(spec.name, interval.start, interval.end)
        )
        record.rows_anomalous = written.where("is_anomaly").count()
        alarm_rate = package.calibration.target_false_alarm_rate
        events = event_ids(group_events(written, sc.event_max_gap, alarm_rate), spec.name, ref.name, ref.version)
        events = events.select(
            "*", F.lit(spec.name).alias("dataset"), F.lit(ref.name).alias("model_name"),
            F.lit(ref.version).alias("model_version"), F.lit(record.run_id).alias("run_id"),
            F.to_date("start_ts").alias("logical_date"),
        )
        replace_interval(spark, settings, EVENTS, events, spec.name, interval.start, interval.end, record.run_id)
        record.n_events = int(commit_metrics(spark, EVENTS.path(settings), record.run_id).get("numOutputRows", 0))

        drift = compute_drift(spark, settings, spec, interval, package, validated.flagged, written, record.run_id,
                              record.rows_anomalous)
        validated.release()
        record.details["drift"] = drift.as_dict()
        record.finish("success")
        record.report_path = write_report(spark, settings, record.as_row(), package.calibration.threshold)
    return record
