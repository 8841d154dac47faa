"""The evaluate job: an interval's scores and events against the dataset's labels (and its NAB windows, when it
has them), written to `evaluation`. `evaluation_metrics` is what the backtests use as well."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.labels import label_points, window_spans
from lakewatch.data.quality import timestamp_of
from lakewatch.data.spec import DatasetSpec, read_source
from lakewatch.errors import DataError
from lakewatch.feedback.spans import feedback_labels
from lakewatch.lakehouse.runs import BACKTEST_PREFIX, RunRecord, new_run_id
from lakewatch.lakehouse.tables import EVALUATION, EVENTS, SCORES, interval_predicate
from lakewatch.lakehouse.writes import read_table, replace_where
from lakewatch.monitoring.evaluate import evaluate_scores, surprise_of
from lakewatch.monitoring.events import EventRules
from lakewatch.monitoring.nab_eval import NabSeries, cut_series, nab_scores
from lakewatch.monitoring.nab_scoring import load_profiles
from lakewatch.packaging.package import ModelPackage
from lakewatch.packaging.registry import ModelRef, load_package
from lakewatch.pipeline.tracking import tracked_run

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

NAB_PROFILES = "datasets/nab/reference/profiles.json"  # under the shared folder


def evaluation_metrics(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, scores: "DataFrame",
    events: "DataFrame", package: ModelPackage,
) -> dict[str, float]:
    """Point, event and AUC metrics of scores and events against the labels; NAB scores when the dataset has
    anomaly windows."""
    labels = label_points(spark, settings, spec, interval.start_ts, interval.end_ts)
    if labels is None:  # no labels table: what analysts confirmed are the anomalies
        labels = feedback_labels(spark, settings, spec.name, scores, interval.start_ts, interval.end_ts)
    if labels is None:
        raise DataError(f"dataset {spec.name} has no labels table, and no event of {interval} was confirmed as an "
                        "anomaly (lakewatch feedback) to evaluate against")
    metrics = evaluate_scores(scores, labels, events, float(interval.days))
    if spec.windows_path(settings):
        metrics.update(nab_metrics(spark, settings, spec, interval, scores, package))
    return metrics


def nab_corpus(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, scores: "DataFrame",
               package: ModelPackage) -> list[NabSeries]:
    """Every entity's whole series (all its source rows) with the interval's surprise (-log10 p), cut to the
    interval."""
    table, _ = read_source(spark, settings, spec)
    timeline = table.select(F.col(spec.entity).cast("string").alias("entity"),
                            F.unix_micros(timestamp_of(table, spec)).alias("t")).where("t IS NOT NULL").toPandas()
    scored = scores.select("entity", F.unix_micros("ts").alias("t"), surprise_of(F.col("calibrated")).alias("score")).toPandas()
    win = window_spans(spark, settings, spec).toPandas()
    entity_spacing = dict(zip(*[package.entity_table().column(c).to_pylist() for c in ("entity", "spacing_s")]))
    global_spacing = float(package.manifest["entities"]["global_spacing_s"])
    start_us, end_us = (int(t.timestamp() * 1e6) for t in (interval.start_ts, interval.end_ts))
    merged = timeline.merge(scored.drop_duplicates(["entity", "t"]), on=["entity", "t"], how="left")
    corpus = []
    for entity, rows in merged.sort_values(["entity", "t"]).groupby("entity", sort=True):
        spans = [(int(a), int(b)) for a, b in
                 win.loc[win["entity"] == entity, ["start_us", "end_us"]].itertuples(index=False)]
        corpus.append(cut_series(str(entity), rows["t"].to_numpy(np.int64), rows["score"].to_numpy(np.float64), spans,
                                 start_us, end_us, float(entity_spacing.get(entity, global_spacing))))
    return corpus


def nab_metrics(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, scores: "DataFrame",
                package: ModelPackage) -> dict[str, float]:
    profiles = load_profiles(settings.path(settings.shared_dir) / NAB_PROFILES)
    corpus = nab_corpus(spark, settings, spec, interval, scores, package)
    return nab_scores(corpus, profiles, -math.log10(package.target_false_alarm_rate), EventRules.of(settings.scoring))


def run_evaluate(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, run_id: str | None = None
) -> tuple[dict[str, float], RunRecord]:
    record = RunRecord(run_id or new_run_id("evaluate"), "evaluate", spec.name, interval.start, interval.end)
    with tracked_run(spark, settings, record):
        where = interval_predicate(spec.name, interval.start, interval.end)
        scores = read_table(spark, settings, SCORES).where(where)
        first = scores.select("model_name", "model_version").first()
        if first is None:
            raise DataError(f"no scores for {spec.name} in {interval}: run `lakewatch score` first")
        record.model_name, record.model_version = first["model_name"], first["model_version"]
        package = load_package(spark, settings, ModelRef(record.model_name, int(record.model_version)))
        events = read_table(spark, settings, EVENTS).where(where)
        metrics = evaluation_metrics(spark, settings, spec, interval, scores, events, package)
        write_metrics(spark, settings, spec, record.run_id,
                      [MetricSet(interval, record.model_name, record.model_version, metrics)],
                      evaluation_of(interval))
        record.rows_scored = int(metrics["rows"])
        record.details["metrics"] = metrics
    return metrics, record


def evaluation_of(interval: Interval) -> str:
    """The rows an evaluation of the interval replaces: the earlier evaluations' of it, never a backtest's (in
    the SQL that Spark and delta-rs both read: LIKE, not Spark's startswith)."""
    return (f"logical_date = DATE'{interval.start}' AND interval_end = DATE'{interval.end}' "
            f"AND NOT run_id LIKE '{BACKTEST_PREFIX}%'")


@dataclass(frozen=True)
class MetricSet:
    """Metrics of one model over one interval, as rows of `evaluation`."""

    interval: Interval
    model_name: str | None
    model_version: int | None
    metrics: dict[str, float]


def write_metrics(spark: "SparkSession", settings: Settings, spec: DatasetSpec, run_id: str, sets: list[MetricSet],
                  replaces: str) -> None:
    """Replace the dataset's evaluation rows matching `replaces` with these metrics (one commit)."""
    now = datetime.now(timezone.utc)
    rows = [
        (spec.name, run_id, m.interval.start, m.interval.start, m.interval.end, m.model_name, m.model_version, name,
         None if isinstance(v, float) and not math.isfinite(v) else float(v), now)
        for m in sets for name, v in sorted(m.metrics.items())
    ]
    safe = spec.name.replace("'", "''")
    replace_where(spark, settings, EVALUATION, spark.createDataFrame(rows, EVALUATION.schema),
                  f"dataset = '{safe}' AND {replaces}", run_id)
