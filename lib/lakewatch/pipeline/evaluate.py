"""The evaluate job: the scores of an interval against the dataset's labels, written to `evaluation`."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lakewatch.config import Settings
from lakewatch.dataset import DatasetSpec
from lakewatch.evaluate import evaluate_scores, label_points
from lakewatch.intervals import Interval
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.runs import RunRecord, new_run_id
from lakewatch.tables import EVALUATION, EVENTS, SCORES, interval_predicate, is_delta, read_table, replace_where

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_evaluate(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, run_id: str | None = None
) -> tuple[dict[str, float], RunRecord]:
    record = RunRecord(run_id or new_run_id("evaluate"), "evaluate", spec.name, interval.start, interval.end)
    with tracked_run(spark, settings, record):
        labels_path = spec.labels_path(settings)
        if labels_path is None or not is_delta(spark, labels_path):
            raise ValueError(f"dataset {spec.name} has no labels table to evaluate against")
        where = interval_predicate(spec.name, interval.start, interval.end)
        scores = read_table(spark, settings, SCORES).where(where)
        first = scores.select("model_name", "model_version").first()
        if first is None:
            raise ValueError(f"no scores for {spec.name} in {interval}: run `lakewatch score` first")
        record.model_name, record.model_version = first["model_name"], first["model_version"]
        labels = label_points(spark.read.format("delta").load(labels_path), spec.entity, spec.timestamp,
                              interval.start_ts, interval.end_ts)
        events = read_table(spark, settings, EVENTS).where(where)
        metrics = evaluate_scores(scores, labels, events, float(interval.days))
        now = datetime.now(timezone.utc)
        rows = [
            (spec.name, record.run_id, interval.start, interval.start, interval.end, record.model_name,
             record.model_version, name, None if isinstance(v, float) and math.isnan(v) else float(v), now)
            for name, v in sorted(metrics.items())
        ]
        df = spark.createDataFrame(rows, EVALUATION.schema)
        replace_where(
            spark, settings, EVALUATION, df,
            f"dataset = '{spec.name}' AND logical_date = DATE'{interval.start}' AND interval_end = DATE'{interval.end}'",
            record.run_id,
        )
        record.rows_scored = int(metrics["rows"])
        record.details["metrics"] = metrics
    return metrics, record
