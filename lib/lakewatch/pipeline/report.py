"""Run reports: gather one scoring run's data (what its job held, the scores of a few entities through delta-rs) and
store its HTML page."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import parse_date
from lakewatch.errors import LakewatchError
from lakewatch.lakehouse import delta_rs
from lakewatch.lakehouse.storage import write_bytes
from lakewatch.lakehouse.tables import DRIFT, EVENTS, QUARANTINE, RUNS, SCORES, interval_predicate, join
from lakewatch.lakehouse.writes import read_table
from lakewatch.monitoring.report import MAX_PANELS, ReportData, render_report

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

MAX_SERIES_ROWS = 60_000
SURPRISE_FLOOR = 1e-16  # 1 - calibrated is exact to about this
MAX_EVENTS = 200
QUIET_DAY_ROWS = 10_000  # on a day without events, the report's entities are found among this many rows
REPORTS_DIR = "reports"


def report_path(settings: Settings, run: dict[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(run["run_id"]))  # Hadoop paths take no ':'
    return join(settings.lakehouse, REPORTS_DIR, str(run["interval_start"]), f"{name}.html")


@dataclass(frozen=True)
class KnownParts:
    """What the scoring job already holds when it renders its report: no query needed for these."""

    drift: pd.DataFrame  # feature, metric, value, threshold, status
    reasons: dict[str, int]  # quarantine reason -> rows
    anomalies_per_hour: pd.DataFrame  # hour, n
    events: pd.DataFrame  # the top MAX_EVENTS events by peak score (`top_events`)


def top_events(events: "pa.Table") -> pd.DataFrame:
    """The report's events (the MAX_EVENTS with the highest peak scores) from an events table's rows."""
    columns = ["event_id", "entity", "start_ts", "end_ts", "n_points", "peak_score", "peak_calibrated", "severity",
               "top_features"]
    order = pc.sort_indices(events, [("peak_score", "descending")])[:MAX_EVENTS]
    top = events.select(columns).take(order)
    frame = top.drop_columns(["top_features"]).to_pandas()
    frame["top_features"] = top.column("top_features").to_pylist()
    return frame


def read_events(spark: "SparkSession", settings: Settings, run: dict[str, Any]) -> pd.DataFrame:
    """The report's events of a run's interval, read from the events table (`top_events`' columns)."""
    where = interval_predicate(run["dataset"], run["interval_start"], run["interval_end"])
    events = read_table(spark, settings, EVENTS).where(where).orderBy(F.col("peak_score").desc()).limit(MAX_EVENTS)
    return top_events(events.toArrow())


def read_known(spark: "SparkSession", settings: Settings, run: dict[str, Any]) -> KnownParts:
    """The parts of a recorded run's report that its scoring job held, read back from the tables."""
    where = interval_predicate(run["dataset"], run["interval_start"], run["interval_end"])
    ev = read_events(spark, settings, run)
    return KnownParts(
        drift=read_table(spark, settings, DRIFT).where(F.col("run_id") == run["run_id"]).select(
            "feature", "metric", "value", "threshold", "status").toPandas(),
        reasons={r["reason"]: int(r["n"]) for r in read_table(spark, settings, QUARANTINE).where(where)
                 .groupBy("reason").agg(F.count("*").alias("n")).collect()},
        anomalies_per_hour=read_table(spark, settings, SCORES).where(where).where("is_anomaly")
        .groupBy(F.date_trunc("hour", "ts").alias("hour")).agg(F.count("*").alias("n")).toPandas(),
        events=ev,
    )


def score_series(settings: Settings, run: dict[str, Any], entities: list[str]) -> pd.DataFrame:
    """(entity, ts, score as surprise, is_anomaly) of some entities over the run's interval, read through
    delta-rs (no Spark job); with no entities (a quiet day), the first few of the rows first read. Rows left
    unscored (a cascade's) are left out; more than MAX_SERIES_ROWS rows are thinned: every anomaly is kept, a
    sample of the normal points."""
    start, end = parse_date(str(run["interval_start"])), parse_date(str(run["interval_end"]))
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    where: list[tuple[str, str, Any]] = [("dataset", "=", run["dataset"]), ("logical_date", "in", days)]
    if not entities:
        first = delta_rs.head(settings, SCORES.name, where, ["entity"], QUIET_DAY_ROWS)
        entities = sorted(pc.unique(first.column("entity")).to_pylist())[:min(3, MAX_PANELS)] if first else []
    if not entities:
        return pd.DataFrame(columns=["entity", "ts", "score", "is_anomaly"])
    pdf = delta_rs.read_pandas(settings, SCORES.name, [*where, ("entity", "in", list(entities))],
                               columns=["entity", "ts", "calibrated", "is_anomaly"], required=False)
    pdf = pdf.dropna(subset=["calibrated"])
    pdf["score"] = -np.log10(np.maximum(1.0 - pdf["calibrated"].astype(float), SURPRISE_FLOOR))
    series = pdf[["entity", "ts", "score", "is_anomaly"]]
    if len(series) > MAX_SERIES_ROWS:
        keep = series["is_anomaly"].to_numpy(bool) | (np.random.default_rng(7).random(len(series))
                                                      < MAX_SERIES_ROWS / len(series))
        series = series[keep]
    return series.sort_values(["entity", "ts"]).reset_index(drop=True)


def gather(spark: "SparkSession", settings: Settings, run: dict[str, Any], alarm_rate: float | None,
           known: KnownParts | None = None) -> ReportData:
    """The report's data for a run: the top events and the scores of their entities (as surprise, -log10 of
    the tail p-value: comparable across entities and models, flagged from -log10 of the alarm rate), anomalies
    per hour, drift and quarantine reasons (all but the scores from `known` when the scoring job passes them)."""
    known = known or read_known(spark, settings, run)
    top = list(dict.fromkeys(known.events["entity"]))[:MAX_PANELS]  # the entities of the most severe events
    return ReportData(
        run=run, series=score_series(settings, run, top), threshold=-math.log10(alarm_rate) if alarm_rate else None,
        events=known.events, anomalies_per_hour=known.anomalies_per_hour, drift=known.drift,
        quarantine_reasons=pd.DataFrame(sorted(known.reasons.items()), columns=["reason", "n"]),
        drift_thresholds=dict(settings.drift.thresholds),
    )


def write_report(spark: "SparkSession", settings: Settings, run: dict[str, Any], alarm_rate: float | None,
                 known: KnownParts | None = None) -> str:
    """Render and store the run's report; returns its location in the lakehouse."""
    path = report_path(settings, run)
    write_bytes(spark, path, render_report(gather(spark, settings, run, alarm_rate, known)).encode())
    return path


def regenerate(spark: "SparkSession", settings: Settings, run_id: str) -> str:
    """`lakewatch report --run-id R`: the report of a recorded scoring run, written again."""
    from lakewatch.packaging.registry import ModelRef, load_package

    row = read_table(spark, settings, RUNS).where((F.col("run_id") == run_id) & (F.col("job") == "score")).first()
    if row is None:
        raise LakewatchError(f"no scoring run {run_id} in the runs table")
    run = row.asDict()
    threshold = None
    if run["model_name"] and run["model_version"]:
        threshold = load_package(spark, settings, ModelRef(run["model_name"], int(run["model_version"]))).target_false_alarm_rate
    return write_report(spark, settings, run, threshold)
