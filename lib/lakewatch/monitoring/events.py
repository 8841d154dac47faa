"""Alert events: an entity's anomalous points grouped into incidents, one alert each, with a severity.

Anomalies of an entity belong to one event when each follows the previous within `merge_points` of the
entity's spacing (the longer of `event_max_gap` normal points between them and the `event_suppression`
period): a burst of alerts on one incident, or a re-trigger shortly after it, is one event. Events with fewer than `event_min_points`
anomalous points are not raised. Only the anomalous rows are read (no window over the whole interval).
Severity comes from how far the peak's tail p-value is below the calibrated alarm rate.

One rule on plain arrays (`group_anomalies`) serves every caller: the scoring job groups the anomalous rows its
scoring pass collected, on the driver; where that pass could not collect them, `group_events` applies the same
function to each entity's anomalous rows in Spark (`applyInArrow`); and `event_starts` gives the first point
of each event that NAB scoring counts as a detection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakewatch.config import ScoringSettings

# severity from how far the peak's p-value is below the alarm rate: alarm_rate / p_peak
SEVERITY_LEVELS = [(100.0, "critical"), (10.0, "high"), (2.0, "medium")]
ANOMALY_COLUMNS = ["entity", "ts", "score", "calibrated", "top_features"]  # what grouping reads of a scored row


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


@dataclass(frozen=True)
class Spacings:
    """Each known entity's usual spacing between rows (seconds), and the global one for the others."""

    by_entity: dict[str, float]
    global_s: float

    def of(self, entity: str) -> float:
        return self.by_entity.get(entity, self.global_s)


@dataclass(frozen=True)
class EventKey:
    """What an event's id is made of besides its entity and start: the same event of a rerun keeps its id, so
    feedback on it stays attached."""

    dataset: str
    model_name: str
    model_version: int


EVENT_COLUMNS = ["event_id", "entity", "start_ts", "end_ts", "n_points", "peak_ts", "peak_score", "peak_calibrated",
                 "severity", "top_features"]  # what grouping gives: the events table's, less the run's constants


@cache
def _arrow_fields(table_name: str) -> dict[str, pa.Field]:
    """The Arrow fields of a lakehouse table (lakehouse.tables: its schema declared once), as Spark converts
    its rows (timestamps in UTC)."""
    from pyspark.sql.pandas.types import to_arrow_schema  # types only: no session, no JVM

    from lakewatch.lakehouse.tables import EVENTS, SCORES

    table = {t.name: t for t in (SCORES, EVENTS)}[table_name]
    return {f.name: f for f in to_arrow_schema(table.schema, timezone="UTC")}


@cache
def anomaly_schema() -> pa.Schema:
    """The anomalous rows grouping reads (ANOMALY_COLUMNS of the scores table), as a scoring pass collects them."""
    fields = _arrow_fields("scores")
    return pa.schema([fields[c] for c in ANOMALY_COLUMNS])


def event_schema(ts_type: pa.DataType | None = None, top_type: pa.DataType | None = None) -> pa.Schema:
    """The columns `group_anomalies` returns (EVENT_COLUMNS of the events table), with the timestamp and top
    features types of the rows grouped when given."""
    fields = _arrow_fields("events")
    types = {c: ts_type for c in ("start_ts", "end_ts", "peak_ts")} | {"top_features": top_type}
    return pa.schema([fields[c].with_type(types[c]) if types.get(c) is not None else fields[c]
                      for c in EVENT_COLUMNS])


def new_events(ts_us: np.ndarray, gap_us: np.ndarray | int, entity_change: np.ndarray | None = None) -> np.ndarray:
    """For anomalous points sorted by (entity, time): True where a point starts an event (the first point, a
    new entity, or more than the entity's gap after the previous point)."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if len(ts_us) == 0:
        return np.zeros(0, dtype=bool)
    new = np.concatenate([[True], np.diff(ts_us) > np.broadcast_to(gap_us, ts_us.shape)[1:]])
    return new | entity_change if entity_change is not None else new


def severity(alarm_rate: float, peak_calibrated: np.ndarray) -> np.ndarray:
    ratio = alarm_rate / np.maximum(1e-300, 1.0 - np.asarray(peak_calibrated, dtype=np.float64))
    out = np.full(len(ratio), "low", dtype=object)
    for bound, label in reversed(SEVERITY_LEVELS):
        out[ratio >= bound] = label
    return out


def spark_timestamp_string(ts_us: int) -> str:
    """A timestamp as Spark casts one to a string in a UTC session ('2026-03-06 22:20:00', fractions without
    trailing zeros): the form event ids have always been hashed from (the session is UTC:
    `lakehouse.session.build_session`)."""
    seconds, micros = divmod(int(ts_us), 1_000_000)
    text = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{micros:06d}".rstrip("0") if micros else text


def event_id(key: EventKey, entity: str, start_us: int) -> str:
    text = "|".join([key.dataset, entity, spark_timestamp_string(start_us), key.model_name, str(key.model_version)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def group_anomalies(rows: pa.Table, rules: EventRules, spacings: Spacings, alarm_rate: float,
                    key: EventKey, min_peak: float | None = None) -> pa.Table:
    """One row per event (`event_schema`) from anomalous rows (entity, ts, score, calibrated, top_features) of
    any entities, in any order; an event's top features are those of its peak (its highest score). With min_peak
    (the alert budget's threshold), only events whose peak calibrated score reaches it are raised."""
    ts_type, top_type = rows.schema.field("ts").type, rows.schema.field("top_features").type
    schema = event_schema(ts_type, top_type)
    if rows.num_rows == 0:
        return schema.empty_table()
    rows = rows.select(ANOMALY_COLUMNS).combine_chunks()
    names = pc.unique(rows.column("entity"))
    codes = pc.index_in(rows.column("entity"), names).to_numpy(zero_copy_only=False)
    ts = rows.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((ts, codes))
    codes, ts = codes[order], ts[order]
    score = rows.column("score").to_numpy(zero_copy_only=False)[order]
    calibrated = rows.column("calibrated").to_numpy(zero_copy_only=False)[order]
    gaps = np.array([rules.gap_us(spacings.of(e)) for e in names.to_pylist()], dtype=np.int64)
    new = new_events(ts, gaps[codes], np.concatenate([[True], np.diff(codes) != 0]))
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(ts)) - 1
    n_points = np.bincount(group)
    peak = np.lexsort((-score, group))[starts]  # the highest score of each group, the earliest of equal ones
    peak_cal = np.maximum.reduceat(calibrated, starts)
    keep = n_points >= rules.min_points
    if min_peak is not None:
        keep &= peak_cal >= min_peak
    starts, ends, n_points, peak, peak_cal = starts[keep], ends[keep], n_points[keep], peak[keep], peak_cal[keep]
    entity = names.take(pa.array(codes[starts])).to_pylist()
    as_ts = lambda a: pa.array(a, pa.int64()).cast(ts_type)  # noqa: E731
    return pa.table({
        "event_id": pa.array([event_id(key, e, t) for e, t in zip(entity, ts[starts].tolist())], pa.string()),
        "entity": pa.array(entity, pa.string()),
        "start_ts": as_ts(ts[starts]), "end_ts": as_ts(ts[ends]), "n_points": pa.array(n_points, pa.int64()),
        "peak_ts": as_ts(ts[peak]), "peak_score": pa.array(score[peak], pa.float64()),
        "peak_calibrated": pa.array(peak_cal, pa.float64()),
        "severity": pa.array(severity(alarm_rate, peak_cal), pa.string()),
        "top_features": rows.column("top_features").take(pa.array(order[peak])),
    }, schema=schema)


def group_events(scores: "DataFrame", rules: EventRules, spacings: Spacings, alarm_rate: float,
                 key: EventKey, min_peak: float | None = None) -> "DataFrame":
    """`group_anomalies` in Spark, over each entity's anomalous rows of `scores` (entity, ts, score,
    calibrated, is_anomaly, top_features): for the scores no scoring pass collected."""
    from pyspark.sql.pandas.types import from_arrow_schema

    anomalies = scores.where("is_anomaly").select(*ANOMALY_COLUMNS)
    schema = event_schema()
    return anomalies.groupBy("entity").applyInArrow(
        lambda rows: group_anomalies(rows, rules, spacings, alarm_rate, key, min_peak).cast(schema),
        from_arrow_schema(schema))


def event_starts(ts_us: np.ndarray, flags: np.ndarray, rules: EventRules, spacing_s: float) -> np.ndarray:
    """The first point of each event of one entity's series (sorted by time), as a boolean mask: what an
    alerting system raises, and what NAB scoring counts as detections."""
    idx = np.flatnonzero(flags)
    starts = np.zeros(len(flags), dtype=bool)
    if len(idx) == 0:
        return starts
    new = new_events(np.asarray(ts_us, dtype=np.int64)[idx], rules.gap_us(spacing_s))
    if rules.min_points > 1:
        group = np.cumsum(new) - 1
        new &= np.bincount(group)[group] >= rules.min_points
    starts[idx[new]] = True
    return starts
