"""The score job: validate, score through the package's plan, write scores, events and drift, record the run.

A model with context W reads the interval plus the history its windows need (the package's horizon),
validates all of it, quarantines and counts only the interval's rows, and writes scores for the interval's
valid rows only. A quiet day (no anomalies) and an empty day (no input rows) are ordinary, successful runs.
The scoring pass summarises its rows on the way (`monitoring.pass_summary`): the drift step and the run's
counts read neither the input's features nor the written scores again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

import pyarrow as pa
from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.quality import QualityCounts, validate_interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.runs import RunRecord, new_run_id
from lakewatch.lakehouse.tables import EVENTS, SCORES, interval_predicate
from lakewatch.lakehouse.writes import replace_interval, replace_interval_rows
from lakewatch.monitoring.drift import SCORE_FEATURE, drift_columns, quantile_sample
from lakewatch.monitoring.events import EventKey, EventRules, Spacings, group_anomalies, group_events
from lakewatch.monitoring.pass_summary import PassMonitor, PassSummary
from lakewatch.packaging.package import ModelPackage, check_schema
from lakewatch.packaging.registry import get_version, load_package, resolve
from lakewatch.pipeline.alert_budget import event_threshold
from lakewatch.pipeline.drift import DriftOutcome, compute_drift, record_drift, reference_profiles_of
from lakewatch.pipeline.report import KnownParts, read_events, top_events, write_report
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.scoring.spark import score_frame, unseen_accumulator

if TYPE_CHECKING:
    import pandas as pd
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
        row = get_version(spark, settings, ref)
        package = load_package(spark, settings, ref, row)
        check_schema(package, spec)
        min_peak = event_threshold(row)
        if min_peak is not None:
            record.details["event_threshold"] = min_peak
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.scoring.batch_size))
        horizon_s = package.max_horizon_us / 1e6

        record.input_table = spec.table_path(settings)
        with record.stage("validate"):
            validated = validate_interval(spark, settings, spec, interval, record.run_id, lookback_s=horizon_s)
        counts = validated.counts
        record.input_version = validated.input_version
        record.rows_in, record.rows_valid, record.rows_quarantined = counts.rows_in, counts.rows_valid, counts.rows_quarantined
        if counts.rows_in == 0:
            record.details["note"] = f"no input rows in {interval}"

        valid = validated.valid.select("entity", "ts", "logical_date", *spec.feature_names)
        start_us = int(interval.start_ts.timestamp() * 1_000_000)
        unseen = unseen_accumulator(spark)
        def tasks() -> int:
            """The pass's tasks: the windowed path's shuffle partitions, or the row-wise path's input splits
            (planned on the driver; asked only when there is a monitor to share its anomalous rows among them)."""
            return settings.spark.shuffle_partitions if package.context > 1 else valid.rdd.getNumPartitions()

        monitor = pass_monitor(spark, settings, spec, package, counts.rows_in, tasks)
        scored = score_frame(valid, package, settings.scoring, start_us, settings.spark.shuffle_partitions,
                             unseen, monitor).select(
            "*", F.lit(spec.name).alias("dataset"), F.lit(ref.name).alias("model_name"),
            F.lit(ref.version).alias("model_version"), F.lit(record.run_id).alias("run_id"),
        )
        with record.stage("model_and_scores_write"):
            record.rows_scored = replace_interval(spark, settings, SCORES, scored, spec.name, interval.start,
                                                  interval.end, record.run_id, monitor.reset if monitor else None)
        QualityCounts(record.rows_in, record.rows_scored, record.rows_quarantined).check()

        written = spark.read.format("delta").load(SCORES.path(settings)).where(
            interval_predicate(spec.name, interval.start, interval.end))
        record.details["unseen_entities"] = len(unseen.value)

        def events() -> tuple[int, "pa.Table | None"]:
            with record.stage("events_and_drift/events"):
                collected = monitor.value.anomalous_rows() if monitor is not None else None
                return write_events(spark, settings, spec, interval, package, written, record.run_id, min_peak,
                                    collected)

        # the pass's summary is checked against the commit before anything is made of it (events, drift)
        passed = None if monitor is None else passed_hours(monitor.value, record.rows_scored)

        def counts_and_drift() -> tuple["pd.DataFrame", DriftOutcome]:
            with record.stage("events_and_drift/counts"):
                hourly = passed if monitor is not None else tally_hours(written)
                record.rows_anomalous = int(hourly["anomalous"].sum())
                record.details["rows_warming_up"] = int(hourly["warming"].sum())
            with record.stage("events_and_drift/drift"):
                if monitor is None:
                    return hourly, compute_drift(spark, settings, spec, interval, package, validated.interval_rows,
                                                 written, record.run_id, record.rows_anomalous, record.rows_in)
                # the quarantined rows are the interval's rows the scoring pass did not see
                unseen_rows = validated.quarantined if counts.rows_quarantined else None
                features, score = monitor.summaries(unseen_rows)
                return hourly, record_drift(spark, settings, spec, interval, package, features, score,
                                            record.run_id, record.rows_anomalous)

        # independent Spark jobs and Delta commits: while one waits on the driver, the other keeps the cores busy
        # (their own times are sub-stages, "events_and_drift/...", overlapping)
        with record.stage("events_and_drift"), ThreadPoolExecutor(2, thread_name_prefix="lakewatch-score") as pool:
            n_events, drift_done = pool.submit(events), pool.submit(counts_and_drift)
            hourly, drift = drift_done.result()
            record.n_events, grouped = n_events.result()
            record.details["events_grouped_in"] = "spark" if grouped is None else "driver"
        validated.release()
        record.details["drift"] = drift.as_dict()
        with record.stage("report"):
            record.finish("success")
            known = KnownParts(drift=drift.frame(), reasons=validated.reasons,
                               anomalies_per_hour=hourly.loc[hourly["anomalous"] > 0, ["hour", "anomalous"]]
                               .rename(columns={"anomalous": "n"}),
                               events=read_events(spark, settings, record.as_row()) if grouped is None
                               else top_events(grouped))
            record.report_path = write_report(spark, settings, record.as_row(), package.target_false_alarm_rate, known)
    return record


def write_events(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval,
                 package: ModelPackage, written: "DataFrame", run_id: str, min_peak: float | None = None,
                 collected: "pa.Table | None" = None) -> tuple[int, "pa.Table | None"]:
    """Group the interval's anomalies into events and replace the interval's events; returns how many, and the
    events when they were grouped on the driver: from `collected`, the anomalous rows the scoring pass kept, when
    it kept them (committed from the driver when they fit one, else through Spark: `replace_interval_rows`);
    else in Spark from the written scores. min_peak: the alert budget's threshold (`group_anomalies`)."""
    rules, spacings, rate, key = event_grouping(settings, spec, package)
    run_columns = {"dataset": spec.name, "model_name": key.model_name, "model_version": key.model_version,
                   "run_id": run_id}
    if collected is not None:
        events = group_anomalies(collected, rules, spacings, rate, key, min_peak)
        for name, value in run_columns.items():
            events = events.append_column(name, pa.repeat(pa.scalar(value), events.num_rows))
        events = events.append_column("logical_date", events.column("start_ts").cast(pa.date32()))
        return replace_interval_rows(spark, settings, EVENTS, events, spec.name, interval.start, interval.end,
                                     run_id), events
    grouped = group_events(written, rules, spacings, rate, key, min_peak)
    grouped = grouped.select("*", *[F.lit(v).alias(k) for k, v in run_columns.items()],
                             F.to_date("start_ts").alias("logical_date"))
    return replace_interval(spark, settings, EVENTS, grouped, spec.name, interval.start, interval.end, run_id), None


def event_grouping(settings: Settings, spec: DatasetSpec, package: ModelPackage
                   ) -> tuple[EventRules, Spacings, float, EventKey]:
    """What grouping a run's anomalies into events takes from its settings and package (`monitoring.events`):
    the rules, each entity's spacing, the alarm rate severities are read against, and the events' key."""
    key = EventKey(spec.name, package.manifest["name"], int(package.manifest["version"]))
    return EventRules.of(settings.scoring), spacings_of(package), package.target_false_alarm_rate, key


def spacings_of(package: ModelPackage) -> Spacings:
    """How far apart an entity's anomalies may be to belong to one event: the spacing of each entity the package
    knows, and the global spacing for the others."""
    table = package.entity_table().select(["entity", "spacing_s"])
    known = dict(zip(table.column("entity").to_pylist(), map(float, table.column("spacing_s").to_pylist())))
    return Spacings(known, float(package.manifest["entities"]["global_spacing_s"]))


def pass_monitor(spark: "SparkSession", settings: Settings, spec: DatasetSpec, package: ModelPackage,
                 n_rows: int, tasks: "int | Callable[[], int]" = 1) -> PassMonitor | None:
    """The scoring pass's summary for drift and counts (`monitoring.pass_summary`), or None where the pass
    cannot see what they need: the cascade leaves rows unscored, and a feature the model does not read is not in
    the pass (both then read the written scores and the input again). tasks: how many tasks the pass runs in
    (each keeps its share of the anomalous rows), or what tells it, asked only when there is a monitor."""
    if settings.scoring.cascade.enabled or not set(spec.feature_names) <= set(package.features):
        return None
    profiles = reference_profiles_of(package)
    ranges = {c.name: c for c in drift_columns(spec)}
    cols = [ranges[f] for f in package.features]
    return PassMonitor.start(spark, cols, [profiles[c.name].edges for c in cols], profiles[SCORE_FEATURE].edges,
                             quantile_sample(n_rows, settings.drift.quantile_sample_rows),
                             tasks() if callable(tasks) else tasks)


def passed_hours(summary: PassSummary, rows_scored: int) -> "pd.DataFrame":
    """The scoring pass's hourly tallies, checked against the rows its commit wrote."""
    hourly = summary.hourly()
    if int(hourly["rows"].sum()) != rows_scored:
        raise RuntimeError(f"the scoring pass summarised {int(hourly['rows'].sum())} rows but wrote {rows_scored}")
    return hourly


def tally_hours(written: "DataFrame") -> "pd.DataFrame":
    """Rows, anomalies and warming-up rows per hour of the interval, in one pass: the run's totals and the
    report's anomalies-per-hour chart."""
    return written.groupBy(F.date_trunc("hour", "ts").alias("hour")).agg(
        F.count(F.lit(1)).alias("rows"), F.count_if("is_anomaly").alias("anomalous"),
        F.count_if("warming_up").alias("warming"),
    ).orderBy("hour").toPandas()
