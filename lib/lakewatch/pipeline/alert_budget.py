"""The alert-budget job: tune a production model's event threshold to `alerting.max_alerts_per_entity_day`
from its calibration and the analysts' feedback over scored days, and record the choice in the registry
(the score job then raises only the events whose peak reaches it). The maths is in feedback.budget."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.labels import label_points
from lakewatch.data.spec import DatasetSpec
from lakewatch.errors import DataError
from lakewatch.feedback import store
from lakewatch.feedback.budget import BudgetChoice, choose_threshold
from lakewatch.lakehouse.tables import EVENTS, SCORES, interval_predicate
from lakewatch.packaging.registry import ModelRef, load_package, resolve, update_metrics

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

BUDGET_KEY = "alert_budget"


def tune_alert_budget(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval,
                      model_name: str | None = None, budget: float | None = None, record: bool = True,
                      ) -> tuple[ModelRef, BudgetChoice]:
    """Choose the production version's event threshold from the interval's scores and events and the feedback
    on them; record it (unless record is false) under `alert_budget` in the version's registry metrics."""
    budget = budget if budget is not None else settings.alerting.max_alerts_per_entity_day
    if budget is None:
        raise DataError("no alert budget: set alerting.max_alerts_per_entity_day in the profile, or pass --budget")
    ref = resolve(spark, settings, model_name or spec.name, None)
    package = load_package(spark, settings, ref)
    mine = (F.col("model_name") == ref.name) & (F.col("model_version") == ref.version)
    where = interval_predicate(spec.name, interval.start, interval.end)
    scores = spark.read.format("delta").load(SCORES.path(settings)).where(where).where(mine)
    size = scores.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("entity").alias("entities"),
                      F.countDistinct("logical_date").alias("days")).first()
    if not size["rows"]:
        raise DataError(f"no scores of {ref} for {spec.name} in {interval}: score the interval first")
    entity_days = float(size["entities"] * size["days"])
    events = spark.read.format("delta").load(EVENTS.path(settings)).where(where).where(mine)
    peaks = events.select("event_id", "entity", "start_ts", "end_ts", "peak_calibrated").toPandas()
    labels = store.latest(settings, spec.name)
    said = dict(zip(labels["event_id"], labels["label"])) if not labels.empty else {}
    false_alarms = peaks[peaks["event_id"].map(said.get) == "false_alarm"]["peak_calibrated"].to_numpy()
    confirmed = set(peaks.loc[peaks["event_id"].map(said.get) == "anomaly", "event_id"])
    confirmed |= _labeled_events(spark, settings, spec, interval, events)
    choice = choose_threshold(budget, package.target_false_alarm_rate, size["rows"] / entity_days, entity_days,
                              false_alarms, peaks.loc[peaks["event_id"].isin(confirmed), "peak_calibrated"].to_numpy())
    if record:
        update_metrics(spark, settings, ref, {BUDGET_KEY: {**choice.to_dict(), "interval": str(interval)}})
    return ref, choice


def _labeled_events(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval,
                    events: "DataFrame") -> set[str]:
    """The events that hold a labeled anomalous point of the dataset's labels table (none without one)."""
    points = label_points(spark, settings, spec, interval.start_ts, interval.end_ts)
    if points is None:
        return set()
    e, p = events.alias("e"), points.alias("p")
    inside = (F.col("e.entity") == F.col("p.entity")) & F.col("p.ts").between(F.col("e.start_ts"), F.col("e.end_ts"))
    return {r[0] for r in e.join(p, inside, "left_semi").select("event_id").collect()}


def budget_entry(row: "Row") -> dict | None:
    """The alert budget recorded in a version's registry row (its threshold and how it was chosen), if any."""
    entry = json.loads(row["metrics"] or "{}").get(BUDGET_KEY)
    return entry if isinstance(entry, dict) and entry.get("threshold") is not None else None


def event_threshold(row: "Row") -> float | None:
    """The event threshold the score job raises a version's events at (None: every event of its alarm rate)."""
    entry = budget_entry(row)
    return float(entry["threshold"]) if entry else None

