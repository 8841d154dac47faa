"""The evaluate job: the scores of an interval against the dataset's labels, written to `evaluation`."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.labels import label_points
from lakewatch.data.spec import DatasetSpec
from lakewatch.errors import DataError
from lakewatch.lakehouse.runs import RunRecord, new_run_id
from lakewatch.lakehouse.tables import EVALUATION, EVENTS, SCORES, interval_predicate
from lakewatch.lakehouse.writes import read_table, replace_where
from lakewatch.monitoring.evaluate import evaluate_scores
from lakewatch.pipeline.tracking import tracked_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_evaluate(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, run_id: str | None = None
) -> tuple[dict[str, float], RunRecord]:
    record = RunRecord(run_id or new_run_id("evaluate"), "evaluate", spec.name, interval.start, interval.end)
    with tracked_run(spark, settings, record):
        labels = label_points(spark, settings, spec, interval.start_ts, interval.end_ts)
        if labels is None:
            raise DataError(f"dataset {spec.name} has no labels table to evaluate against")
        where = interval_predicate(spec.name, interval.start, interval.end)
        scores = read_table(spark, settings, SCORES).where(where)
        first = scores.select("model_name", "model_version").first()
        if first is None:
            raise DataError(f"no scores for {spec.name} in {interval}: run `lakewatch score` first")
        record.model_name, record.model_version = first["model_name"], first["model_version"]
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
