"""Champion/challenger: score the same recent interval with production and a candidate (in memory, as a
backtest does: nothing but the registry is written), measure both against the labels (or the anomalies
analysts confirmed, or without either, the alert rate), decide (packaging.promotion) and record the decision,
the metrics of both and the reasons in the candidate's registry metrics; promote it when the decision says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.labels import label_points
from lakewatch.data.spec import DatasetSpec
from lakewatch.errors import RegistryError
from lakewatch.feedback.spans import feedback_labels
from lakewatch.monitoring.evaluate import evaluate_scores
from lakewatch.packaging.promotion import Decision, decide
from lakewatch.packaging.registry import ModelRef, get_version, load_package, production, promote, update_metrics
from lakewatch.pipeline.alert_budget import BUDGET_KEY, budget_entry, event_threshold
from lakewatch.pipeline.backtest import score_in_memory

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CHALLENGE_KEY = "challenge"
SHOWN = ("pr_auc", "event_recall", "false_alerts_per_entity_day", "alerts_per_entity_day", "flagged_share",
         "f1", "point_false_alarm_rate")


@dataclass(frozen=True)
class Comparison:
    name: str
    champion: int | None
    challenger: int
    interval: Interval
    basis: str
    metrics: dict[int, dict[str, float]]
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {"vs": self.champion, "interval": str(self.interval), "basis": self.basis,
                "metrics": {str(v): {k: m.get(k) for k in SHOWN if k in m} for v, m in self.metrics.items()},
                "decision": "promote" if self.decision.promote else "keep production",
                "reasons": self.decision.reasons, "at": datetime.now(timezone.utc).isoformat()}


def measure(spark: "SparkSession", settings: Settings, spec: DatasetSpec, ref: ModelRef, interval: Interval,
            min_peak: float | None) -> tuple[dict[str, float], str]:
    """One version's metrics on the interval with events raised at min_peak, and what they rest on (labels,
    feedback or unlabeled)."""
    package = load_package(spark, settings, ref)
    scores, events = score_in_memory(spark, settings, spec, package, interval, f"challenge-{ref.name}-v{ref.version}")
    if min_peak is not None:
        events = events.where(F.col("peak_calibrated") >= F.lit(min_peak))
    try:
        size = scores.agg(F.countDistinct("entity").alias("e"), F.avg(F.col("is_anomaly").cast("double")).alias("f")
                          ).first()
        entity_days = max(float(size["e"] or 0) * interval.days, 1e-9)
        metrics = {"alerts_per_entity_day": events.count() / entity_days, "flagged_share": float(size["f"] or 0.0)}
        labels, basis = label_points(spark, settings, spec, interval.start_ts, interval.end_ts), "labels"
        if labels is None:
            labels, basis = feedback_labels(spark, settings, spec.name, scores, interval.start_ts,
                                            interval.end_ts), "feedback"
        if labels is None:
            return metrics, "unlabeled"
        return {**evaluate_scores(scores, labels, events, float(interval.days)), **metrics}, basis
    finally:
        scores.unpersist()
        events.unpersist()


def compare(spark: "SparkSession", settings: Settings, spec: DatasetSpec, name: str, champion: int | None,
            challenger: int, interval: Interval) -> Comparison:
    """Both versions measured on the same interval, and the decision of packaging.promotion. Both raise events
    at the same alert level: the challenger's own tuned threshold, else production's (calibrated scores mean
    the same across versions), so that false alerts are compared at one operating point."""
    ours_at = event_threshold(get_version(spark, settings, ModelRef(name, champion))) if champion is not None else None
    theirs_at = event_threshold(get_version(spark, settings, ModelRef(name, challenger)))
    theirs, basis = measure(spark, settings, spec, ModelRef(name, challenger), interval,
                            ours_at if theirs_at is None else theirs_at)
    ours = None
    if champion is not None:
        ours, basis_c = measure(spark, settings, spec, ModelRef(name, champion), interval, ours_at)
        basis = basis if basis == basis_c else "unlabeled"
    decision = decide(ours, theirs, basis, settings.promotion, settings.alerting.max_alerts_per_entity_day)
    metrics = {challenger: theirs, **({champion: ours} if champion is not None else {})}
    return Comparison(name, champion, challenger, interval, decision.basis, metrics, decision)


def recent_interval(spark: "SparkSession", settings: Settings, ref: ModelRef) -> Interval:
    """The `promotion.compare_days` days up to the end of the version's training interval."""
    row = get_version(spark, settings, ref)
    if row["training_end"] is None:
        raise RegistryError(f"{ref} records no training interval: give the interval to compare on")
    end = row["training_end"]
    return Interval(end - timedelta(days=settings.promotion.compare_days), end)


def challenge(spark: "SparkSession", settings: Settings, spec: DatasetSpec, ref: ModelRef,
              interval: Interval | None = None) -> Comparison | None:
    """Compare a candidate with production, record the comparison in the candidate's metrics, and promote it
    when the decision says so and `promotion.auto` is on; None when it is production already (a first version)."""
    current = production(spark, settings, ref.name)
    if current is None or int(current["version"]) == ref.version:
        return None
    comparison = compare(spark, settings, spec, ref.name, int(current["version"]), ref.version,
                         interval or recent_interval(spark, settings, ref))
    entry = comparison.to_dict()
    promoted = comparison.decision.promote and settings.promotion.auto
    entry["promoted"] = promoted
    updates: dict[str, Any] = {CHALLENGE_KEY: entry}
    inherited = budget_entry(current)
    if promoted and inherited and budget_entry(get_version(spark, settings, ref)) is None:
        # it was compared at production's alert level: it keeps that level until a budget is tuned for it
        updates[BUDGET_KEY] = {**inherited, "inherited_from": int(current["version"])}
    update_metrics(spark, settings, ref, updates)
    if promoted:
        promote(spark, settings, ref)
    return comparison
