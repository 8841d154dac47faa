"""Statistics of a dataset's valid rows computed in Spark: normalisation, and the training sample."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.dataset import DatasetSpec
from lakewatch.intervals import Interval
from lakewatch.tables import is_delta

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TWO_53 = float(2**53)


def hash_uniform(seed: int, *cols: str) -> "F.Column":
    """A deterministic uniform [0, 1) per row, the same whatever the partitioning."""
    return F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in cols]), F.lit(2**53)).cast("double") / F.lit(TWO_53)


def labeled_anomalies(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval) -> "DataFrame | None":
    """(entity, ts) of the labeled anomalies in the interval, when the dataset has labels."""
    path = spec.labels_path(settings)
    if path is None or not is_delta(spark, path):
        return None
    labels = spark.read.format("delta").load(path)
    return (
        labels.where(F.col("is_anomaly"))
        .select(F.col(spec.entity).cast("string").alias("entity"), F.col(spec.timestamp).alias("ts"))
        .where((F.col("ts") >= F.lit(interval.start_ts)) & (F.col("ts") < F.lit(interval.end_ts)))
        .distinct()
    )


def split_labeled(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, valid: "DataFrame"
) -> tuple["DataFrame", "DataFrame | None"]:
    """(valid rows without labeled anomalies, the labeled anomalous valid rows or None without labels)."""
    labels = labeled_anomalies(spark, settings, spec, interval)
    if labels is None:
        return valid, None
    return valid.join(labels, ["entity", "ts"], "left_anti"), valid.join(labels, ["entity", "ts"], "left_semi")


def feature_moments(df: "DataFrame", features: list[str]) -> tuple[int, np.ndarray, np.ndarray]:
    """(rows, mean, std) of every feature in one pass; a constant feature gets std 1."""
    aggs = [F.count(F.lit(1))]
    for f in features:
        aggs += [F.avg(f), F.stddev_pop(f)]
    row = df.agg(*aggs).first()
    n = int(row[0])
    if n == 0:
        raise ValueError("no valid, unlabeled rows in the training interval")
    # parallel float sums differ in their last bits from run to run: 12 significant digits are stable,
    # which keeps training deterministic under its seed
    mean = np.array([_stable(row[1 + 2 * i]) for i in range(len(features))], dtype=np.float64)
    std = np.array([_stable(row[2 + 2 * i] or 0.0) for i in range(len(features))], dtype=np.float64)
    return n, mean, np.where(std > 1e-12, std, 1.0)


def _stable(value: float) -> float:
    return float(f"{value:.12g}")


def even_sample(df: "DataFrame", size: int, seed: int) -> "DataFrame":
    """About `size` rows, the same share of each entity's quota: no entity crowds the others out."""
    counts = df.groupBy("entity").agg(F.count(F.lit(1)).alias("_n"))
    n_entities = counts.count()
    quota = size / max(1, n_entities)
    fractions = counts.select("entity", F.least(F.lit(1.0), F.lit(quota) / F.col("_n")).alias("_frac"))
    return (
        df.join(F.broadcast(fractions), "entity")
        .where(hash_uniform(seed, "entity", "ts") < F.col("_frac"))
        .drop("_frac")
    )
