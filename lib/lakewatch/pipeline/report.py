"""Run reports: gather one scoring run's tables (small, aggregated in Spark) and store its HTML page."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

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
REPORTS_DIR = "reports"


def report_path(settings: Settings, run: dict[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(run["run_id"]))  # Hadoop paths take no ':'
    return join(settings.lakehouse, REPORTS_DIR, str(run["interval_start"]), f"{name}.html")


def gather(spark: "SparkSession", settings: Settings, run: dict[str, Any], threshold: float | None) -> ReportData:
    """The report's data for a run: the most anomalous entities' scores, events, hourly counts, drift."""
    where = interval_predicate(run["dataset"], run["interval_start"], run["interval_end"])
    scores = read_table(spark, settings, SCORES).where(where)
    top = [r["entity"] for r in scores.groupBy("entity").agg(F.max("score").alias("m"))
           .orderBy(F.col("m").desc()).limit(MAX_PANELS).collect()]
    series = scores.where(F.col("entity").isin(top)).select("entity", "ts", "score", "is_anomaly")
    n = series.count()
    if n > MAX_SERIES_ROWS:  # thin the normal points, keep every anomaly
        series = series.where(F.col("is_anomaly") | (F.rand(7) < MAX_SERIES_ROWS / n))
    events = read_table(spark, settings, EVENTS).where(where).select(
        "event_id", "entity", "start_ts", "end_ts", "n_points", "peak_score", "peak_calibrated", "severity",
        F.to_json("top_features").alias("top_features"))
    hourly = scores.where("is_anomaly").groupBy(F.date_trunc("hour", "ts").alias("hour")).agg(F.count("*").alias("n"))
    drift = read_table(spark, settings, DRIFT).where(F.col("run_id") == run["run_id"]).select(
        "feature", "metric", "value", "threshold", "status")
    reasons = read_table(spark, settings, QUARANTINE).where(where).groupBy("reason").agg(F.count("*").alias("n"))
    ev = events.toPandas()
    ev["top_features"] = ev["top_features"].map(lambda s: json.loads(s) if isinstance(s, str) else None)
    return ReportData(
        run=run, series=series.toPandas(), threshold=threshold, events=ev, anomalies_per_hour=hourly.toPandas(),
        drift=drift.toPandas(), quarantine_reasons=reasons.toPandas(), drift_thresholds=dict(settings.drift.thresholds),
    )


def write_report(spark: "SparkSession", settings: Settings, run: dict[str, Any], threshold: float | None) -> str:
    """Render and store the run's report; returns its location in the lakehouse."""
    path = report_path(settings, run)
    write_bytes(spark, path, render_report(gather(spark, settings, run, threshold)).encode())
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
        threshold = load_package(spark, settings, ModelRef(run["model_name"], int(run["model_version"]))).calibration.threshold
    return write_report(spark, settings, run, threshold)
