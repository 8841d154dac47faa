"""Run reports: gather one scoring run's tables (small, aggregated in Spark) and store its HTML page."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.errors import LakewatchError
from lakewatch.lakehouse.storage import write_bytes
from lakewatch.lakehouse.tables import DRIFT, EVENTS, QUARANTINE, RUNS, SCORES, interval_predicate, join
from lakewatch.lakehouse.writes import read_table
from lakewatch.monitoring.report import MAX_PANELS, ReportData, render_report

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MAX_SERIES_ROWS = 60_000
SURPRISE_FLOOR = 1e-16  # 1 - calibrated is exact to about this
MAX_EVENTS = 200
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


def gather(spark: "SparkSession", settings: Settings, run: dict[str, Any], alarm_rate: float | None,
           known: KnownParts | None = None) -> ReportData:
    """The report's data for a run: the top events and the scores of their entities (as surprise, -log10 of
    the tail p-value: comparable across entities and models, flagged from -log10 of the alarm rate), anomalies
    per hour, drift and quarantine reasons (the last three from `known` when the scoring job passes them)."""
    where = interval_predicate(run["dataset"], run["interval_start"], run["interval_end"])
    scores = read_table(spark, settings, SCORES).where(where)
    events = read_table(spark, settings, EVENTS).where(where).orderBy(F.col("peak_score").desc()).limit(MAX_EVENTS)
    ev = events.select("event_id", "entity", "start_ts", "end_ts", "n_points", "peak_score", "peak_calibrated",
                       "severity", F.to_json("top_features").alias("top_features")).toPandas()
    ev["top_features"] = ev["top_features"].map(lambda s: json.loads(s) if isinstance(s, str) else None)
    top = list(dict.fromkeys(ev["entity"]))[:MAX_PANELS]  # the entities of the most severe events
    if not top:
        top = [r["entity"] for r in scores.select("entity").distinct().limit(min(3, MAX_PANELS)).collect()]
    series = scores.where(F.col("entity").isin(top)).select(
        "entity", "ts", (-F.log10(F.greatest(F.lit(1.0) - F.col("calibrated"), F.lit(SURPRISE_FLOOR)))).alias("score"),
        "is_anomaly")
    n = series.count() if (run.get("rows_scored") or 0) > MAX_SERIES_ROWS else 0  # counted only when it may matter
    if n > MAX_SERIES_ROWS:  # thin the normal points, keep every anomaly
        series = series.where(F.col("is_anomaly") | (F.rand(7) < MAX_SERIES_ROWS / n))
    if known is None:
        known = KnownParts(
            drift=read_table(spark, settings, DRIFT).where(F.col("run_id") == run["run_id"]).select(
                "feature", "metric", "value", "threshold", "status").toPandas(),
            reasons={r["reason"]: int(r["n"]) for r in read_table(spark, settings, QUARANTINE).where(where)
                     .groupBy("reason").agg(F.count("*").alias("n")).collect()},
            anomalies_per_hour=scores.where("is_anomaly").groupBy(F.date_trunc("hour", "ts").alias("hour"))
            .agg(F.count("*").alias("n")).toPandas(),
        )
    return ReportData(
        run=run, series=series.toPandas(), threshold=-math.log10(alarm_rate) if alarm_rate else None, events=ev, anomalies_per_hour=known.anomalies_per_hour,
        drift=known.drift, quarantine_reasons=pd.DataFrame(sorted(known.reasons.items()), columns=["reason", "n"]),
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
