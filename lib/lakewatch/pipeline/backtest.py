"""Backtests: train and score as production would, over labeled history, and measure; nothing is registered
and no output table but `evaluation` (and `runs`) is written.

Protocols:
- walk-forward: train on the `train_days` before a cut, score the `every_days` after it, move the cut by
  `every_days`, until the end; every fold gets a model of its own.
- nab: NAB's own protocol: each entity's probationary period (its first 15 % of rows, at most 750) is all
  that is trained on, and everything after it is scored (NAB ignores detections in the probationary period).

Every requested model is measured side by side with the statistical baseline (`baseline`). Metrics are written
to `evaluation` under the backtest's id: per fold (model_version = the fold number) and over all folds
(model_version null), with NAB scores when the dataset has anomaly windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.quality import timestamp_of, validate_interval
from lakewatch.data.spec import DatasetSpec, read_source
from lakewatch.errors import DataError, LakewatchError
from lakewatch.lakehouse.runs import RunRecord, backtest_run_id
from lakewatch.monitoring.events import group_events
from lakewatch.monitoring.nab_scoring import probationary_length
from lakewatch.packaging.package import ModelPackage
from lakewatch.pipeline.evaluate import MetricSet, evaluation_metrics, write_metrics
from lakewatch.pipeline.score import event_grouping
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.pipeline.train import RowFilter, fit_package
from lakewatch.scoring.spark import score_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

BASELINE = "baseline"
PROTOCOLS = ("walk-forward", "nab")
HEADLINE = ["nab_standard_optimized", "nab_standard", "pr_auc", "f1", "event_recall", "event_recall_at_far",
            "false_alerts_per_entity_day", "mean_time_to_detect_s", "point_false_alarm_rate"]
GATE = ["gate_pass_rate", "gate_recall", "gate_event_recall"]  # with scoring.cascade on


@dataclass(frozen=True)
class Fold:
    number: int
    train: Interval
    test: Interval


@dataclass
class BacktestResult:
    backtest_id: str
    protocol: str
    folds: list[Fold]
    metrics: dict[tuple[str, int | None], dict[str, float]] = field(default_factory=dict)  # (model, fold) -> metrics
    record: RunRecord | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # model -> wall-clock of its folds (train + score)
    score_seconds: dict[str, float] = field(default_factory=dict)  # model -> wall-clock of scoring its folds

    def overall(self, model: str) -> dict[str, float]:
        return self.metrics[(model, None)]


def walk_forward_folds(start: date, end: date, train_days: int, every_days: int) -> list[Fold]:
    """Folds whose training days precede their test days, the cut moving by every_days."""
    if train_days < 1 or every_days < 1:
        raise LakewatchError("train_days and every_days must be at least 1")
    folds, cut = [], start + timedelta(days=train_days)
    while cut < end:
        folds.append(Fold(len(folds) + 1, Interval(cut - timedelta(days=train_days), cut),
                          Interval(cut, min(end, cut + timedelta(days=every_days)))))
        cut += timedelta(days=every_days)
    if not folds:
        raise LakewatchError(f"no fold fits [{start}, {end}) with {train_days} training days")
    return folds


def probation_ends(spark: "SparkSession", settings: Settings, spec: DatasetSpec) -> "DataFrame":
    """(entity, probation_end): the timestamp of each entity's first row after NAB's probationary period,
    counted over all its source rows (as NAB counts the rows of a file)."""
    table, _ = read_source(spark, settings, spec)
    rows = table.select(F.col(spec.entity).cast("string").alias("entity"), timestamp_of(table, spec).alias("ts"))
    rows = rows.where("entity IS NOT NULL AND ts IS NOT NULL")
    n = rows.groupBy("entity").count().collect()
    cut = spark.createDataFrame([(r["entity"], probationary_length(int(r["count"])) + 1) for r in n],
                                "entity STRING, _rank INT")
    ranked = rows.withColumn("_rank", F.row_number().over(Window.partitionBy("entity").orderBy("ts")))
    return ranked.join(F.broadcast(cut), ["entity", "_rank"]).select("entity", F.col("ts").alias("probation_end"))


def dataset_range(spark: "SparkSession", settings: Settings, spec: DatasetSpec) -> Interval:
    table, _ = read_source(spark, settings, spec)
    row = table.agg(F.min(timestamp_of(table, spec)).alias("a"), F.max(timestamp_of(table, spec)).alias("b")).first()
    if row["a"] is None:
        raise DataError(f"dataset {spec.name} has no rows")
    return Interval(row["a"].date(), row["b"].date() + timedelta(days=1))


def run_backtest(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, models: list[str], protocol: str = "walk-forward",
    start: date | None = None, end: date | None = None, train_days: int = 7, every_days: int = 7,
    backtest_id: str | None = None, with_baseline: bool = True,
) -> BacktestResult:
    """Every model through the protocol's folds, next to the statistical baseline (unless with_baseline is
    false: a rerun of models already compared, e.g. with the cascade on)."""
    if protocol not in PROTOCOLS:
        raise LakewatchError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    bt_id = backtest_run_id(backtest_id)
    whole = dataset_range(spark, settings, spec) if (start is None or end is None) else Interval(start, end)
    if protocol == "nab":
        folds = [Fold(1, whole, whole)]
        ends = F.broadcast(probation_ends(spark, settings, spec).persist())
        train_rows = lambda df: df.join(ends, "entity").where(F.col("ts") < F.col("probation_end")).drop("probation_end")  # noqa: E731
        test_rows = lambda df: df.join(ends, "entity").where(F.col("ts") >= F.col("probation_end")).drop("probation_end")  # noqa: E731
    else:
        folds = walk_forward_folds(whole.start, whole.end, train_days, every_days)
        train_rows = test_rows = None
    models = list(dict.fromkeys([*models, BASELINE] if with_baseline else models))
    result = BacktestResult(bt_id, protocol, folds)
    record = RunRecord(bt_id, "backtest", spec.name, whole.start, whole.end)
    with tracked_run(spark, settings, record):
        for model in models:
            began = time.perf_counter()
            scored_all, events_all, cached = None, None, []
            result.score_seconds[model] = 0.0
            for fold in folds:
                scores, events, package, took = score_fold(spark, settings, spec, model, fold, bt_id, train_rows,
                                                           test_rows)
                result.score_seconds[model] += took
                cached += [scores, events]
                result.metrics[(model, fold.number)] = evaluation_metrics(spark, settings, spec, fold.test, scores,
                                                                          events, package)
                scored_all = scores if scored_all is None else scored_all.unionByName(scores)
                events_all = events if events_all is None else events_all.unionByName(events)
            test_range = Interval(folds[0].test.start, folds[-1].test.end)
            result.metrics[(model, None)] = (result.metrics[(model, 1)] if len(folds) == 1 else evaluation_metrics(
                spark, settings, spec, test_range, scored_all, events_all, package))
            for df in cached:
                df.unpersist()
            result.seconds[model] = round(time.perf_counter() - began, 1)
        test_range = Interval(folds[0].test.start, folds[-1].test.end)
        write_metrics(spark, settings, spec, bt_id, [
            MetricSet(fold.test if number else test_range, model, number, values)
            for (model, number), values in result.metrics.items() for fold in [folds[(number or 1) - 1]]
        ], f"run_id = '{bt_id}'")
        record.details.update(protocol=protocol, models=models, folds=len(folds),
                              overall={m: {k: result.overall(m).get(k) for k in HEADLINE} for m in models})
    result.record = record
    return result


def score_fold(spark: "SparkSession", settings: Settings, spec: DatasetSpec, model: str, fold: Fold, bt_id: str,
               train_rows: "RowFilter | None" = None, test_rows: "RowFilter | None" = None,
               ) -> tuple["DataFrame", "DataFrame", ModelPackage, float]:
    """Train a package on the fold's training rows, score its test interval in memory (cached, as are its
    events: the caller unpersists them), group the events; with the seconds scoring took (validation included,
    training not)."""
    trained = fit_package(spark, settings, spec, fold.train, model, model, fold.number, bt_id, train_rows)
    began = time.perf_counter()
    scores, events = score_in_memory(spark, settings, spec, trained.package, fold.test, bt_id, test_rows)
    return scores, events, trained.package, time.perf_counter() - began


def score_in_memory(spark: "SparkSession", settings: Settings, spec: DatasetSpec, package: ModelPackage,
                    interval: Interval, run_id: str, rows: "RowFilter | None" = None,
                    ) -> tuple["DataFrame", "DataFrame"]:
    """A package's scores of an interval (validated, nothing quarantined or written; `rows` keeps some of
    them) and their events, both cached: the caller unpersists them."""
    validated = validate_interval(spark, settings, spec, interval, run_id, package.max_horizon_us / 1e6,
                                  quarantine=False)
    valid = validated.valid.select("entity", "ts", "logical_date", *spec.feature_names)
    start_us = int(interval.start_ts.timestamp() * 1_000_000)
    scores = score_frame(valid, package, settings.scoring, start_us, settings.spark.shuffle_partitions)
    if rows is not None:
        scores = rows(scores)
    scores = scores.persist()
    scores.count()
    validated.release()
    events = group_events(scores, *event_grouping(settings, spec, package)).persist()
    return scores, events
