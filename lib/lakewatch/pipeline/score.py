"""The score job: validate, score through the package's plan, write scores, events and drift, record the run.

A model with context W reads the interval plus the history its windows need (the package's horizon),
validates all of it, quarantines and counts only the interval's rows, and writes scores for the interval's
valid rows only. A quiet day (no anomalies) and an empty day (no input rows) are ordinary, successful runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.quality import QualityCounts, validate_interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.runs import RunRecord, new_run_id
from lakewatch.lakehouse.tables import EVENTS, SCORES, interval_predicate
from lakewatch.lakehouse.writes import replace_interval
from lakewatch.monitoring.events import event_ids, group_events
from lakewatch.packaging.package import ModelPackage, check_schema
from lakewatch.packaging.registry import load_package, resolve
from lakewatch.pipeline.drift import compute_drift
from lakewatch.pipeline.report import write_report
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.scoring.spark import score_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


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
        horizon_s = (package.manifest["windows"]["horizon_us"] or 0) / 1e6

        record.input_table = spec.table_path(settings)
        validated = validate_interval(spark, settings, spec, interval, record.run_id, lookback_s=horizon_s)
        counts = validated.counts
        record.input_version = validated.input_version
        record.rows_in, record.rows_valid, record.rows_quarantined = counts.rows_in, counts.rows_valid, counts.rows_quarantined
        if counts.rows_in == 0:
            record.details["note"] = f"no input rows in {interval}"

        valid = validated.valid.select("entity", "ts", "logical_date", *spec.feature_names)
        start_us = int(interval.start_ts.timestamp() * 1_000_000)
        scored = score_frame(valid, package, settings.scoring, start_us, settings.spark.shuffle_partitions).select(
            "*", F.lit(spec.name).alias("dataset"), F.lit(ref.name).alias("model_name"),
            F.lit(ref.version).alias("model_version"), F.lit(record.run_id).alias("run_id"),
        )
        record.rows_scored = replace_interval(spark, settings, SCORES, scored, spec.name, interval.start, interval.end,
                                              record.run_id)
        QualityCounts(record.rows_in, record.rows_scored, record.rows_quarantined).check()

        written = spark.read.format("delta").load(SCORES.path(settings)).where(
            interval_predicate(spec.name, interval.start, interval.end))
        tally = written.agg(F.count_if("is_anomaly").alias("anomalous"), F.count_if("warming_up").alias("warming")).first()
        record.rows_anomalous = int(tally["anomalous"] or 0)
        record.details["rows_warming_up"] = int(tally["warming"] or 0)
        record.details["unseen_entities"] = unseen_entities(spark, package, written)
        record.n_events = write_events(spark, settings, spec, interval, package, written, record.run_id)

        drift = compute_drift(spark, settings, spec, interval, package, validated.interval_rows, written, record.run_id,
                              record.rows_anomalous)
        validated.release()
        record.details["drift"] = drift.as_dict()
        record.finish("success")
        record.report_path = write_report(spark, settings, record.as_row(), package.calibration.threshold)
    return record


def write_events(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval,
                 package: ModelPackage, written: "DataFrame", run_id: str) -> int:
    """Group the interval's anomalies into events and replace the interval's events; returns how many."""
    m = package.manifest
    name, version = m["name"], int(m["version"])
    alarm_rate = package.calibration.target_false_alarm_rate
    events = event_ids(group_events(written, settings.scoring.event_max_gap, alarm_rate), spec.name, name, version)
    events = events.select(
        "*", F.lit(spec.name).alias("dataset"), F.lit(name).alias("model_name"),
        F.lit(version).alias("model_version"), F.lit(run_id).alias("run_id"),
        F.to_date("start_ts").alias("logical_date"),
    )
    return replace_interval(spark, settings, EVENTS, events, spec.name, interval.start, interval.end, run_id)


def unseen_entities(spark: "SparkSession", package: ModelPackage, written: "DataFrame") -> int:
    """Entities scored with the global statistics because training did not see them (0 for global scope)."""
    entry = package.manifest["transforms"]["normalization"]
    if entry["scope"] != "entity":
        return 0
    known = spark.createDataFrame(package.normalizer().entities.to_pylist() or [""], "string").toDF("entity")
    return written.select("entity").distinct().join(F.broadcast(known), "entity", "left_anti").count()
