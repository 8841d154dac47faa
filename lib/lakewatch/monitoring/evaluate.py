"""Evaluation against labels: point-wise and event-wise quality of the scores of an interval.

Counts and score histograms are aggregated in Spark; only small histograms reach the driver, where
ROC-AUC and PR-AUC are computed from them. Rows are ranked by their surprise, -log10 of the tail p-value
(1 - calibrated): the scale the flags are set on, comparable across entities when the model is calibrated
per entity (a raw score is not). Surprise is binned at 0.01 (ties within a bin are treated as ties, which is
what the AUCs of rounded scores would give) up to 16, where float64 holds 1 - calibrated no closer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

BINS_PER_UNIT = 100
SURPRISE_CAP = 16.0
OPERATING_FAR = 0.005  # the point false-alarm rate of `event_recall_at_far`: the operating point


def surprise_of(calibrated: "Column") -> "Column":
    """-log10 of the tail p-value, from the calibrated value (1 - p); null for a row the cascade's gate left
    unscored (`greatest` skips nulls: without the guard such a row would get the largest surprise)."""
    surprise = -F.log10(F.greatest(F.lit(1.0) - calibrated, F.lit(10 ** -SURPRISE_CAP)))
    return F.when(calibrated.isNotNull(), surprise)


def auc_from_histogram(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(ROC-AUC, PR-AUC as average precision) from counts of positives and negatives per score bin,
    bins ordered from the highest score to the lowest. NaN when a class is absent."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    p_total, n_total = pos.sum(), neg.sum()
    if p_total == 0 or n_total == 0:
        return float("nan"), float("nan")
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    tpr = np.concatenate([[0.0], tp / p_total])
    fpr = np.concatenate([[0.0], fp / n_total])
    roc = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
    precision = tp / np.maximum(tp + fp, 1.0)
    ap = float(np.sum((pos / p_total) * precision))
    return roc, ap


def operating_bin(neg: np.ndarray, keys: np.ndarray, far: float, normal: float | None = None) -> float:
    """The lowest surprise bin (of `keys`, ordered from the highest, with the negatives in each) at or above which
    at most `far` of the normal points lie: the threshold of the operating point at that false-alarm rate
    (+inf when even the top bin holds more). normal: all normal points, when some were never scored (a cascade's
    gate: never flagged, but normal points all the same); default the binned ones."""
    neg = np.asarray(neg, dtype=np.float64)
    within = np.flatnonzero(np.cumsum(neg) <= far * (neg.sum() if normal is None else normal))
    return float(keys[within[-1]]) if len(within) else float("inf")


def point_metrics(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp and (precision + recall) else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate_scores(scores: "DataFrame", labels: "DataFrame", events: "DataFrame", days: float) -> dict[str, float]:
    """All metrics of one interval: scores (entity, ts, score, is_anomaly), labels from label_points, events."""
    has_uncertainty = "uncertainty" in scores.columns
    unc = F.col("uncertainty") if has_uncertainty else F.lit(None).cast("double")
    joined = scores.select("entity", "ts", surprise_of(F.col("calibrated")).alias("surprise"), "is_anomaly",
                           unc.alias("uncertainty"), F.col("calibrated").isNotNull().alias("passed")).join(
        labels.select("entity", "ts", "anomaly_id", "kind"), ["entity", "ts"], "left"
    ).withColumn("label", F.col("anomaly_id").isNotNull())
    joined = joined.persist()
    c = joined.agg(
        F.count(F.when(F.col("label") & F.col("is_anomaly"), 1)).alias("tp"),
        F.count(F.when(~F.col("label") & F.col("is_anomaly"), 1)).alias("fp"),
        F.count(F.when(F.col("label") & ~F.col("is_anomaly"), 1)).alias("fn"),
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("entity").alias("entities"),
        F.avg(F.when(F.col("label"), F.col("uncertainty"))).alias("u_anomalous"),
        F.avg(F.when(~F.col("label"), F.col("uncertainty"))).alias("u_normal"),
        F.count_if("passed").alias("passed"),
        F.count_if(F.col("passed") & F.col("label")).alias("passed_labeled"),
    ).first()
    metrics: dict[str, float] = {"rows": float(c["n"]), "labeled_points": float(c["tp"] + c["fn"])}
    metrics.update(point_metrics(c["tp"], c["fp"], c["fn"]))
    negatives = c["n"] - c["tp"] - c["fn"]
    metrics["point_false_alarm_rate"] = c["fp"] / negatives if negatives else float("nan")
    if c["u_normal"] is not None:
        metrics["uncertainty_normal_mean"] = float(c["u_normal"])
        if c["u_anomalous"] is not None:
            metrics["uncertainty_anomalous_mean"] = float(c["u_anomalous"])
            metrics["uncertainty_ratio"] = float(c["u_anomalous"]) / max(float(c["u_normal"]), 1e-12)

    gated = c["passed"] < c["n"]  # a cascade's gate left rows unscored (calibrated null): they rank last
    if gated:
        metrics["gate_pass_rate"] = c["passed"] / c["n"]
        labeled = c["tp"] + c["fn"]
        metrics["gate_recall"] = c["passed_labeled"] / labeled if labeled else float("nan")

    key = F.floor(F.col("surprise") * BINS_PER_UNIT)
    hist = joined.groupBy(key.alias("k")).agg(
        F.count(F.when(F.col("label"), 1)).alias("pos"), F.count(F.when(~F.col("label"), 1)).alias("neg")
    ).orderBy(F.col("k").desc_nulls_last()).collect()
    metrics["roc_auc"], metrics["pr_auc"] = auc_from_histogram([r["pos"] for r in hist], [r["neg"] for r in hist])
    scored = [r for r in hist if r["k"] is not None]
    at_far = operating_bin(np.array([r["neg"] for r in scored]), np.array([r["k"] for r in scored]), OPERATING_FAR,
                           negatives)

    # event-wise: an injected anomaly counts as found if any of its scored points is flagged
    per_anomaly = joined.where("label").groupBy("anomaly_id", "kind").agg(
        F.min("ts").alias("start"),
        F.max(F.col("is_anomaly").cast("int")).alias("found"),
        F.min(F.when(F.col("is_anomaly"), F.col("ts"))).alias("first_hit"),
        F.max(F.col("passed").cast("int")).alias("passed"),
        F.max(key).alias("peak"),
    ).withColumn("delay_s", F.unix_timestamp("first_hit") - F.unix_timestamp("start"))
    rows = per_anomaly.groupBy("kind").agg(
        F.count(F.lit(1)).alias("n"), F.sum("found").alias("found"), F.sum("delay_s").alias("delay"),
        F.sum("passed").alias("passed"), F.count_if(F.col("peak") >= F.lit(at_far)).alias("found_at_far"),
    ).collect()
    n_anom = sum(r["n"] for r in rows)
    n_found = sum(r["found"] for r in rows)
    metrics["labeled_anomalies"] = float(n_anom)
    metrics["event_recall"] = n_found / n_anom if n_anom else float("nan")
    # the same at the operating point of OPERATING_FAR (the threshold read off the test's own normal points: a point
    # on the event-recall / false-alarm curve, like an AUC, not a threshold the model could have used)
    metrics["event_recall_at_far"] = sum(r["found_at_far"] for r in rows) / n_anom if n_anom else float("nan")
    metrics["mean_time_to_detect_s"] = sum(r["delay"] or 0 for r in rows) / n_found if n_found else float("nan")
    for r in rows:
        metrics[f"event_recall:{r['kind']}"] = r["found"] / r["n"]
    if gated and n_anom:
        metrics["gate_event_recall"] = sum(r["passed"] for r in rows) / n_anom

    # alert events that overlap no labeled point of their entity are false alerts
    hits = events.alias("e").join(
        labels.alias("l"),
        (F.col("e.entity") == F.col("l.entity")) & F.col("l.ts").between(F.col("e.start_ts"), F.col("e.end_ts")),
        "left_semi",
    )
    n_events = events.count()
    false_alerts = n_events - hits.count()
    entity_days = max(1.0, float(c["entities"]) * days)
    metrics["events"] = float(n_events)
    metrics["false_alerts"] = float(false_alerts)
    metrics["false_alerts_per_entity_day"] = false_alerts / entity_days
    joined.unpersist()
    return metrics
