"""Alert events: consecutive anomalous points of an entity grouped into one event with a severity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# severity from how far the peak's p-value is below the alarm rate: alarm_rate / p_peak
SEVERITY_LEVELS = [(100.0, "critical"), (10.0, "high"), (2.0, "medium")]


def severity(alarm_rate: float, peak_calibrated: Column) -> Column:
    ratio = F.lit(alarm_rate) / F.greatest(F.lit(1e-300), F.lit(1.0) - peak_calibrated)
    out = F.lit("low")
    for bound, label in reversed(SEVERITY_LEVELS):
        out = F.when(ratio >= bound, F.lit(label)).otherwise(out)
    return out


def group_events(scores: "DataFrame", max_gap: int, alarm_rate: float) -> "DataFrame":
    """One row per event: anomalous points of an entity at most max_gap normal points apart are one event.

    `scores` holds every scored row of the interval (entity, ts, score, calibrated, is_anomaly, top_features);
    the position of each row in its entity's series tells which anomalies are consecutive.
    """
    pos = F.row_number().over(Window.partitionBy("entity").orderBy("ts"))
    anomalies = scores.select("*", pos.alias("pos")).where("is_anomaly")
    by_entity = Window.partitionBy("entity").orderBy("pos")
    new_event = F.coalesce(F.col("pos") - F.lag("pos").over(by_entity) > max_gap + 1, F.lit(True))
    numbered = anomalies.withColumn("event_no", F.sum(new_event.cast("int")).over(by_entity))
    return numbered.groupBy("entity", "event_no").agg(
        F.min("ts").alias("start_ts"),
        F.max("ts").alias("end_ts"),
        F.count("*").alias("n_points"),
        F.max_by("ts", "score").alias("peak_ts"),
        F.max("score").alias("peak_score"),
        F.max("calibrated").alias("peak_calibrated"),
        F.max_by("top_features", "score").alias("top_features"),
    ).withColumn("severity", severity(alarm_rate, F.col("peak_calibrated"))).drop("event_no")


def event_ids(events: "DataFrame", dataset: str, model_name: str, model_version: int) -> "DataFrame":
    """A stable id: the same event of a rerun keeps its id, so feedback on it stays attached."""
    key = F.concat_ws("|", F.lit(dataset), "entity", F.col("start_ts").cast("string"), F.lit(model_name),
                      F.lit(str(model_version)))
    return events.withColumn("event_id", F.substring(F.sha2(key, 256), 1, 20))
