"""Import the NAB subset (shared/datasets/nab): one entity per series, its labels and anomaly windows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakewatch.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WINDOWS_SCHEMA = T.StructType(
    [
        T.StructField("series", T.StringType(), False),
        T.StructField("window_id", T.StringType(), False),
        T.StructField("window_start", T.TimestampType(), False),
        T.StructField("window_end", T.TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class NabCounts:
    series: int
    rows: int
    windows: int
    labeled_rows: int


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.split(".")[0]).replace(tzinfo=timezone.utc)


def series_name(relative_csv: str) -> str:
    """`realKnownCause/nyc_taxi.csv` -> `realKnownCause/nyc_taxi`: the entity of that series."""
    return relative_csv.removesuffix(".csv")


def read_windows(nab_dir: Path) -> list[tuple[str, str, datetime, datetime]]:
    windows = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    rows = []
    for csv, spans in sorted(windows.items()):
        for k, (start, end) in enumerate(spans):
            rows.append((series_name(csv), f"{series_name(csv)}#{k}", _ts(start), _ts(end)))
    return rows


def nab_frames(spark: "SparkSession", nab_dir: Path) -> tuple["DataFrame", "DataFrame", "DataFrame"]:
    """(values, labels, windows): values as (series, ts, value, date); labels, the points inside a window."""
    data_dir = (nab_dir / "data").resolve()
    if not data_dir.is_dir():
        raise DataError(f"NAB data not found at {data_dir} (set shared_dir in the profile)")
    raw = (
        spark.read.option("header", "true")
        .schema("timestamp STRING, value DOUBLE")
        .csv(str(data_dir / "*" / "*.csv"))
        .withColumn("_file", F.col("_metadata.file_path"))
    )
    series = F.regexp_extract("_file", r"data/([^/]+/[^/]+)\.csv$", 1)
    ts = F.to_timestamp("timestamp", "yyyy-MM-dd HH:mm:ss")
    values = raw.select(series.alias("series"), ts.alias("ts"), "value", F.to_date(ts).alias("date"))
    windows = spark.createDataFrame(read_windows(nab_dir), WINDOWS_SCHEMA)
    points = {
        (series_name(csv), _ts(t)) for csv, ts_list in json.loads(
            (nab_dir / "labels" / "combined_labels.json").read_text()
        ).items() for t in ts_list
    }
    label_points = spark.createDataFrame(
        sorted(points), "series STRING, ts TIMESTAMP"
    ).withColumn("labeled_point", F.lit(True))
    labels = (
        values.alias("v")
        .join(
            F.broadcast(windows).alias("w"),
            (F.col("v.series") == F.col("w.series"))
            & (F.col("v.ts") >= F.col("w.window_start"))
            & (F.col("v.ts") <= F.col("w.window_end")),
        )
        .select("v.series", "v.ts", "w.window_id", "v.date")
        .join(F.broadcast(label_points), ["series", "ts"], "left")
        .select(
            "series",
            "ts",
            F.lit(True).alias("is_anomaly"),
            F.when(F.col("labeled_point"), F.lit("labeled_point")).otherwise(F.lit("window")).alias("kind"),
            F.col("window_id").alias("anomaly_id"),
            "date",
        )
    )
    return values, labels, windows


def import_nab(spark: "SparkSession", nab_dir: Path, values_path: str, labels_path: str, windows_path: str) -> NabCounts:
    """Write the three NAB tables (overwriting: the import is a snapshot of the files) and count them."""
    values, labels, windows = nab_frames(spark, nab_dir)
    for df, path, parts in ((values, values_path, ["date"]), (labels, labels_path, ["date"]), (windows, windows_path, [])):
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        (writer.partitionBy(*parts) if parts else writer).save(path)
    read = lambda p: spark.read.format("delta").load(p)  # noqa: E731
    return NabCounts(
        series=read(values_path).select("series").distinct().count(),
        rows=read(values_path).count(),
        windows=read(windows_path).count(),
        labeled_rows=read(labels_path).count(),
    )
