"""The spans analysts confirmed as anomalies (the label in force is `anomaly`), and what they change.

A model learns what normal is from the rows it trains on: an incident an analyst confirmed is not normal,
whether the dataset has a labels table or not, so training drops its rows (`drop_confirmed`). A dataset without
a labels table is evaluated against the confirmed spans (`feedback_labels`): their points are the anomalies.
The spans are few (read through delta-rs), so they are broadcast into one range join.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from lakewatch.config import Settings
from lakewatch.feedback import store

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPANS_SCHEMA = "entity STRING, start_ts TIMESTAMP, end_ts TIMESTAMP, anomaly_id STRING"


def confirmed_spans(settings: Settings, dataset: str, start: datetime, end: datetime) -> list[tuple]:
    """(entity, start_ts, end_ts, anomaly_id) of the labels in force that say `anomaly` and overlap [start, end);
    the id is the event's, or entity@start for a range."""
    latest = store.latest(settings, dataset)
    if latest.empty:
        return []
    rows = latest[latest["label"] == "anomaly"]
    spans = [(str(r.entity), store.to_utc(r.start_ts), store.to_utc(r.end_ts),
              r.event_id if isinstance(r.event_id, str) else f"{r.entity}@{store.to_utc(r.start_ts).isoformat()}")
             for r in rows.itertuples()]
    lo, hi = store.to_utc(start), store.to_utc(end)
    return [s for s in spans if s[1] < hi and s[2] >= lo]


def drop_confirmed(spark: "SparkSession", settings: Settings, dataset: str, rows: "DataFrame", start: datetime,
                   end: datetime) -> tuple["DataFrame", int]:
    """The rows (entity, ts, ...) outside every confirmed anomaly of the interval, and how many spans there were."""
    spans = confirmed_spans(settings, dataset, start, end)
    if not spans:
        return rows, 0
    return rows.alias("r").join(*_inside(spark, spans), "left_anti"), len(spans)


def feedback_labels(spark: "SparkSession", settings: Settings, dataset: str, scores: "DataFrame", start: datetime,
                    end: datetime) -> "DataFrame | None":
    """The scored points (entity, ts) inside the interval's confirmed spans as label points, in the shape of
    data.labels.label_points (entity, ts, anomaly_id, kind='confirmed'); None when nothing was confirmed."""
    from pyspark.sql import functions as F

    spans = confirmed_spans(settings, dataset, start, end)
    if not spans:
        return None
    s, inside = _inside(spark, spans)
    return (scores.select("entity", "ts").alias("r").join(s, inside, "inner")
            .select(F.col("r.entity").alias("entity"), F.col("r.ts").alias("ts"), F.col("s.anomaly_id"),
                    F.lit("confirmed").alias("kind"))
            .where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end))).distinct())


def _inside(spark: "SparkSession", spans: list[tuple]):
    """The broadcast spans (alias s) and the condition that a row (alias r) lies inside one of them."""
    from pyspark.sql import functions as F

    s = F.broadcast(spark.createDataFrame(spans, SPANS_SCHEMA)).alias("s")
    return s, (F.col("r.entity") == F.col("s.entity")) & F.col("r.ts").between(F.col("s.start_ts"), F.col("s.end_ts"))
