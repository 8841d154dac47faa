"""Every lakehouse table, declared once: schema, partitioning and location, and the writes they allow."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import types as T

from lakewatch.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

RAW_DIR = "raw"
FEATURE_SHARES = T.ArrayType(
    T.StructType([T.StructField("feature", T.StringType()), T.StructField("share", T.DoubleType())])
)


@dataclass(frozen=True)
class Table:
    """A Delta table of the lakehouse: its name, schema and partition columns."""

    name: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()

    def path(self, settings: Settings) -> str:
        return join(settings.lakehouse, self.name)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]


def _schema(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, dtype, True) for name, dtype in fields])


S, D, L, I, B, TS, DT = T.StringType(), T.DoubleType(), T.LongType(), T.IntegerType(), T.BooleanType(), T.TimestampType(), T.DateType()

QUARANTINE = Table(
    "quarantine",
    _schema(("dataset", S), ("entity", S), ("ts", TS), ("row", S), ("reason", S), ("run_id", S), ("logical_date", DT)),
    ("dataset", "logical_date"),
)
SCORES = Table(
    "scores",
    _schema(
        ("dataset", S), ("entity", S), ("ts", TS), ("score", D), ("calibrated", D), ("uncertainty", D),
        ("is_anomaly", B), ("top_features", FEATURE_SHARES), ("model_name", S), ("model_version", I),
        ("run_id", S), ("logical_date", DT),
    ),
    ("dataset", "logical_date"),
)
EVENTS = Table(
    "events",
    _schema(
        ("event_id", S), ("dataset", S), ("entity", S), ("start_ts", TS), ("end_ts", TS), ("n_points", L),
        ("peak_ts", TS), ("peak_score", D), ("peak_calibrated", D), ("severity", S),
        ("top_features", FEATURE_SHARES), ("model_name", S), ("model_version", I), ("run_id", S),
        ("logical_date", DT),
    ),
    ("dataset", "logical_date"),
)
DRIFT = Table(
    "drift",
    _schema(
        ("dataset", S), ("run_id", S), ("logical_date", DT), ("feature", S), ("metric", S), ("value", D),
        ("threshold", D), ("status", S), ("model_name", S), ("model_version", I),
    ),
    ("dataset", "logical_date"),
)
RUNS = Table(
    "runs",
    _schema(
        ("run_id", S), ("job", S), ("dataset", S), ("logical_date", DT), ("interval_start", DT),
        ("interval_end", DT), ("input_table", S), ("input_version", L), ("model_name", S),
        ("model_version", I), ("rows_in", L), ("rows_valid", L), ("rows_quarantined", L), ("rows_scored", L),
        ("rows_anomalous", L), ("n_events", L), ("started_at", TS), ("ended_at", TS), ("duration_s", D),
        ("status", S), ("error", S), ("report_path", S), ("details", S),
    ),
)
MODELS = Table(
    "models",
    _schema(
        ("name", S), ("version", I), ("stage", S), ("model_type", S), ("dataset", S), ("artifact", S),
        ("checksum", S), ("metrics", S), ("training_table", S), ("training_version", L),
        ("training_start", DT), ("training_end", DT), ("created_at", TS), ("promoted_at", TS), ("updated_at", TS),
    ),
)
EVALUATION = Table(
    "evaluation",
    _schema(
        ("dataset", S), ("run_id", S), ("logical_date", DT), ("interval_start", DT), ("interval_end", DT),
        ("model_name", S), ("model_version", I), ("metric", S), ("value", D), ("computed_at", TS),
    ),
    ("dataset", "logical_date"),
)
FEEDBACK = Table(
    "feedback",
    _schema(
        ("dataset", S), ("event_id", S), ("entity", S), ("start_ts", TS), ("end_ts", TS), ("label", S),
        ("author", S), ("at", TS),
    ),
)

OUTPUT_TABLES: tuple[Table, ...] = (QUARANTINE, SCORES, EVENTS, DRIFT, RUNS, MODELS, EVALUATION, FEEDBACK)
CONCURRENT_RETRIES = 5


def join(root: str, *parts: str) -> str:
    """Join lakehouse paths for local folders and URIs (s3a://) alike."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def raw_table_path(settings: Settings, name: str) -> str:
    """A source table named in a dataset spec: a path as given, or a name under the lakehouse's raw/."""
    if "/" in name or "://" in name:
        return name
    return join(settings.lakehouse, RAW_DIR, name)


def is_delta(spark: "SparkSession", path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def ensure_table(spark: "SparkSession", settings: Settings, table: Table) -> str:
    """Create the table empty, with its declared schema, if it does not exist yet; return its path."""
    path = table.path(settings)
    if not is_delta(spark, path):
        writer = spark.createDataFrame([], table.schema).write.format("delta").mode("ignore")
        if table.partition_by:
            writer = writer.partitionBy(*table.partition_by)
        writer.save(path)
    return path


def read_table(spark: "SparkSession", settings: Settings, table: Table) -> "DataFrame":
    return spark.read.format("delta").load(ensure_table(spark, settings, table))


def conform(df: "DataFrame", table: Table) -> "DataFrame":
    """Select the table's columns in order with its types, so that no write can drift the schema."""
    from pyspark.sql import functions as F

    missing = [c for c in table.columns if c not in df.columns]
    if missing:
        raise ValueError(f"rows for table {table.name} lack columns {missing}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in table.schema.fields])


def interval_predicate(dataset: str, start: date, end: date) -> str:
    """The replaceWhere predicate of one dataset's logical dates [start, end): partition columns only."""
    safe = dataset.replace("'", "''")
    return f"dataset = '{safe}' AND logical_date >= DATE'{start.isoformat()}' AND logical_date < DATE'{end.isoformat()}'"


def _with_retries(action, what: str) -> None:
    """Run a Delta commit, retrying when a concurrent writer of another interval won the race."""
    for attempt in range(CONCURRENT_RETRIES):
        try:
            action()
            return
        except Exception as exc:  # delta raises py4j-wrapped Concurrent* exceptions
            if "Concurrent" not in type(exc).__name__ + str(exc)[:500] or attempt == CONCURRENT_RETRIES - 1:
                raise
            time.sleep(0.5 * 2**attempt)
    raise RuntimeError(f"unreachable: {what}")


def replace_where(
    spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame", predicate: str, run_id: str | None = None
) -> None:
    """Atomically replace the rows matching predicate with df: one Delta commit, nothing else touched.

    The commit carries the run id as its userMetadata, so the run can find its own commit's metrics
    even when other runs commit to the same table at the same time.
    """
    path = ensure_table(spark, settings, table)
    rows = conform(df, table)
    writer = rows.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if run_id:
        writer = writer.option("userMetadata", run_id)
    _with_retries(lambda: writer.save(path), f"replace {table.name} {predicate}")


def replace_interval(
    spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame", dataset: str, start: date, end: date,
    run_id: str | None = None,
) -> None:
    """Atomically replace one dataset's logical dates [start, end) of a partitioned table with df."""
    replace_where(spark, settings, table, df, interval_predicate(dataset, start, end), run_id)


def append(spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame") -> None:
    path = ensure_table(spark, settings, table)
    rows = conform(df, table)
    _with_retries(lambda: rows.write.format("delta").mode("append").save(path), f"append {table.name}")


def table_version(spark: "SparkSession", path: str) -> int:
    """The current Delta version of a table: the lineage recorded with every run and model."""
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def commit_metrics(spark: "SparkSession", path: str, run_id: str) -> dict[str, str]:
    """The operation metrics of the latest commit this run made to the table (tagged with its run id)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    row = (
        DeltaTable.forPath(spark, path).history(50).where(F.col("userMetadata") == run_id)
        .orderBy(F.col("version").desc()).select("operationMetrics").first()
    )
    if row is None:
        raise RuntimeError(f"no commit of run {run_id} in {path}")
    return dict(row[0] or {})


def last_commit_metrics(spark: "SparkSession", path: str) -> dict[str, str]:
    """The operation metrics of the table's latest commit (for single-writer tools such as the benchmark)."""
    from delta.tables import DeltaTable

    return dict(DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()[0] or {})
