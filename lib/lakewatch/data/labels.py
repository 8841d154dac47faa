"""Labels: a dataset's ground truth as (entity, ts, anomaly_id, kind) points, whatever its columns are called.

The labels table's entity and timestamp columns are the spec's `labels.entity` / `labels.timestamp` when
given, else the dataset's own names, else `entity` / `ts` (the documented contract). `is_anomaly` is
required; `anomaly_id` (one id per labeled anomaly, for event metrics) and `kind` are optional. A table that
fits none of this fails with a message that names the table, the columns it has and the ones it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lakewatch.config import Settings
from lakewatch.data.spec import DatasetSpec
from lakewatch.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class LabelColumns:
    entity: str
    ts: str


def label_columns(spec: DatasetSpec, columns: list[str]) -> LabelColumns:
    """Which columns of a labels table hold the entity and the timestamp."""
    assert spec.labels is not None
    have = set(columns)

    def pick(given: str | None, own: str, default: str, what: str) -> str:
        candidates = [given] if given else [own, default]
        for c in candidates:
            if c in have:
                return c
        raise DataError(
            f"dataset {spec.name}: labels table {spec.labels.table} has no {what} column "
            f"{' or '.join(repr(c) for c in candidates)} (it has: {', '.join(columns)}); name it in the spec's "
            f"labels.{'entity' if what == 'entity' else 'timestamp'}"
        )

    cols = LabelColumns(pick(spec.labels.entity, spec.entity, "entity", "entity"),
                        pick(spec.labels.timestamp, spec.timestamp, "ts", "timestamp"))
    if "is_anomaly" not in have:
        raise DataError(f"dataset {spec.name}: labels table {spec.labels.table} has no is_anomaly column "
                        f"(it has: {', '.join(columns)})")
    return cols


def read_labels(spark: "SparkSession", settings: Settings, spec: DatasetSpec) -> "DataFrame | None":
    """The raw labels table, or None when the dataset has none (or it was never written)."""
    from lakewatch.lakehouse.writes import is_delta

    path = spec.labels_path(settings)
    if path is None or not is_delta(spark, path):
        return None
    return spark.read.format("delta").load(path)


def label_points(spark: "SparkSession", settings: Settings, spec: DatasetSpec, start: datetime,
                 end: datetime) -> "DataFrame | None":
    """The labeled anomalous points of [start, end) as (entity, ts, anomaly_id, kind), or None without labels."""
    from pyspark.sql import functions as F

    labels = read_labels(spark, settings, spec)
    if labels is None:
        return None
    cols = label_columns(spec, labels.columns)
    entity, ts = F.col(cols.entity).cast("string"), F.col(cols.ts).cast("timestamp")
    anomaly_id = F.col("anomaly_id") if "anomaly_id" in labels.columns else F.concat_ws("@", entity, ts.cast("string"))
    kind = F.col("kind") if "kind" in labels.columns else F.lit("anomaly")
    return labels.where(F.col("is_anomaly")).select(
        entity.alias("entity"), ts.alias("ts"), anomaly_id.cast("string").alias("anomaly_id"),
        kind.cast("string").alias("kind"),
    ).where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))


def window_spans(spark: "SparkSession", settings: Settings, spec: DatasetSpec) -> "DataFrame":
    """The dataset's anomaly windows as (entity, start_us, end_us): the spec's labels.windows table, with its
    entity column named as the labels' is, and window_start / window_end timestamps."""
    from pyspark.sql import functions as F

    path = spec.windows_path(settings)
    if path is None:
        raise DataError(f"dataset {spec.name} names no anomaly windows table (labels.windows)")
    windows = spark.read.format("delta").load(path)
    have = windows.columns
    entity = next((c for c in ([spec.labels.entity] if spec.labels and spec.labels.entity else [spec.entity, "entity"])
                   if c in have), None)
    missing = [c for c in ("window_start", "window_end") if c not in have] + ([] if entity else ["an entity column"])
    if missing:
        raise DataError(f"dataset {spec.name}: windows table {spec.labels.windows} lacks {', '.join(missing)} "
                        f"(it has: {', '.join(have)})")
    return windows.select(F.col(entity).cast("string").alias("entity"),
                          F.unix_micros(F.col("window_start").cast("timestamp")).alias("start_us"),
                          F.unix_micros(F.col("window_end").cast("timestamp")).alias("end_us"))
