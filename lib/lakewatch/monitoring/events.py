"""Alert events: an entity's anomalous points grouped into incidents, one alert each, with a severity.

Anomalies of an entity belong to one event when each follows the previous within `merge_points` of the
entity's spacing (the longer of `event_max_gap` normal points between them and the `event_suppression`
period): a burst of alerts on one incident, or a re-trigger shortly after it, is one event. Events with fewer than `event_min_points`
anomalous points are not raised. Only the anomalous rows are read (no window over the whole interval).
Severity comes from how far the peak's tail p-value is below the calibrated alarm rate.
The same rules, on plain arrays, give the event starts that NAB scoring counts as detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import Column, Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakewatch.config import ScoringSettings

# severity from how far the peak's p-value is below the alarm rate: alarm_rate / p_peak
SEVERITY_LEVELS = [(100.0, "critical"), (10.0, "high"), (2.0, "medium")]


@dataclass(frozen=True)
class EventRules:
    """How anomalies become events: how many of the entity's spacings apart two anomalies of one event may
    be, and the fewest anomalous points an event needs to raise an alert."""

    merge_points: float = 2.0
    min_points: int = 1

    @classmethod
    def of(cls, sc: "ScoringSettings") -> "EventRules":
        return cls(float(max(sc.event_max_gap + 1, sc.event_suppression)), sc.event_min_points)

    def gap_us(self, spacing_s: float) -> int:
        # half a spacing of slack: a row a little late is still the next row
        return int(round((self.merge_points + 0.5) * spacing_s * 1e6))


def severity(alarm_rate: float, peak_calibrated: Column) -> Column:
    ratio = F.lit(alarm_rate) / F.greatest(F.lit(1e-300), F.lit(1.0) - peak_calibrated)
    out = F.lit("low")
    for bound, label in reversed(SEVERITY_LEVELS):
        out = F.when(ratio >= bound, F.lit(label)).otherwise(out)
    return out


def group_events(scores: "DataFrame", rules: EventRules, spacing: "DataFrame", alarm_rate: float) -> "DataFrame":
    """One row per event from the anomalous rows of `scores` (entity, ts, score, calibrated, is_anomaly,
    top_features); spacing: (entity, spacing_s), with the global spacing under a null entity."""
    fallback = spacing.where(F.col("entity").isNull()).select(F.col("spacing_s").alias("_global"))
    known = spacing.where(F.col("entity").isNotNull())
    anomalies = (scores.where("is_anomaly").select("entity", "ts", "score", "calibrated", "top_features")
                 .join(F.broadcast(known), "entity", "left").crossJoin(F.broadcast(fallback)))
    limit = F.lit(rules.merge_points + 0.5) * F.coalesce(F.col("spacing_s"), F.col("_global")) * F.lit(1e6)
    by_entity = Window.partitionBy("entity").orderBy("ts")
    gap = F.unix_micros("ts") - F.lag(F.unix_micros("ts")).over(by_entity)
    numbered = anomalies.withColumn("_new", F.coalesce(gap > limit, F.lit(True)).cast("int"))
    numbered = numbered.withColumn("event_no", F.sum("_new").over(by_entity))
    events = numbered.groupBy("entity", "event_no").agg(
        F.min("ts").alias("start_ts"),
        F.max("ts").alias("end_ts"),
        F.count("*").alias("n_points"),
        F.max_by("ts", "score").alias("peak_ts"),
        F.max("score").alias("peak_score"),
        F.max("calibrated").alias("peak_calibrated"),
        F.max_by("top_features", "score").alias("top_features"),
    ).where(F.col("n_points") >= rules.min_points)
    return events.withColumn("severity", severity(alarm_rate, F.col("peak_calibrated"))).drop("event_no")


def event_ids(events: "DataFrame", dataset: str, model_name: str, model_version: int) -> "DataFrame":
    """A stable id: the same event of a rerun keeps its id, so feedback on it stays attached."""
    key = F.concat_ws("|", F.lit(dataset), "entity", F.col("start_ts").cast("string"), F.lit(model_name),
                      F.lit(str(model_version)))
    return events.withColumn("event_id", F.substring(F.sha2(key, 256), 1, 20))


def event_starts(ts_us: np.ndarray, flags: np.ndarray, rules: EventRules, spacing_s: float) -> np.ndarray:
    """The first point of each event of one entity's series (sorted by time), as a boolean mask: what an
    alerting system raises, and what NAB scoring counts as detections."""
    idx = np.flatnonzero(flags)
    starts = np.zeros(len(flags), dtype=bool)
    if len(idx) == 0:
        return starts
    t = np.asarray(ts_us, dtype=np.int64)[idx]
    new = np.concatenate([[True], np.diff(t) > rules.gap_us(spacing_s)])
    group = np.cumsum(new) - 1
    if rules.min_points > 1:
        keep = np.bincount(group)[group] >= rules.min_points
        new &= keep
    starts[idx[new]] = True
    return starts
