"""Writes to the lakehouse tables: created on first use, replaced by interval, appended, upserted; retried.

Every write conforms its rows to the table's declared schema, so no write can drift it. A table created by
an older Lakewatch that lacks a declared column gets it added (nullable) on first use. Concurrent writers
of other intervals (or of the table's creation) lose a race now and then: those commits are retried.

The tables whose commits carry a few rows (`Table.small`: a run's quarantine, events, drift verdicts, its own
row, evaluations) are committed from the driver through delta-rs when the rows are at most `DRIVER_COMMIT_ROWS`:
milliseconds where a Spark commit costs 1.5-2 s; more rows than that, and every other table, Spark writes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable

from lakewatch.config import Settings
from lakewatch.lakehouse import delta_rs
from lakewatch.lakehouse.tables import Table, interval_predicate

if TYPE_CHECKING:
    from datetime import date

    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("lakewatch")
CONCURRENT_RETRIES = 6
_RACE_MARKERS = ("Concurrent", "ProtocolChanged", "MetadataChanged", "FileAlreadyExists", "already exists",
                 "concurrent transaction")  # the last: delta-rs's CommitFailedError of a lost race
DRIVER_COMMIT_ROWS = 100_000  # a small table's commit of at most this many rows goes through delta-rs


def is_delta(spark: "SparkSession", path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def _lost_race(exc: BaseException) -> bool:
    text = type(exc).__name__ + str(exc)[:2000]
    return any(marker in text for marker in _RACE_MARKERS)


def with_retries(action: Callable[[], object], what: str, retries: int = CONCURRENT_RETRIES,
                 before_attempt: Callable[[], None] | None = None) -> None:
    """Run a Delta commit, retrying when a concurrent writer won the race; before_attempt runs before each
    try (a retry computes its rows again: what they accumulate on their way starts over)."""
    for attempt in range(retries):
        if before_attempt is not None:
            before_attempt()
        try:
            action()
            return
        except Exception as exc:  # delta raises py4j-wrapped Concurrent* exceptions
            if not _lost_race(exc) or attempt == retries - 1:
                raise
            log.info("%s lost a race with a concurrent writer (%s): retrying", what, type(exc).__name__)
            time.sleep(0.3 * 2**attempt)


def _add_missing_columns(spark: "SparkSession", path: str, table: Table) -> None:
    """Add the declared columns that a table written by an older version lacks (nullable, at the end)."""
    present = set(spark.read.format("delta").load(path).columns)
    missing = [f for f in table.schema.fields if f.name not in present]
    if missing:
        cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        with_retries(lambda: spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({cols})"), f"migrate {table.name}")
        log.warning("table %s: added columns %s", table.name, [f.name for f in missing])


_ENSURED: set[str] = set()  # tables this process has found (or made) with every declared column


def ensure_table(spark: "SparkSession", settings: Settings, table: Table) -> str:
    """Create the table empty, with its declared schema, if it does not exist yet; return its path.

    Idempotent under concurrency: when two first runs create it at once, the loser finds it created.
    Checked once per table and process: a job writes to the same tables many times.
    """
    path = table.path(settings)
    if path in _ENSURED:
        return path
    if is_delta(spark, path):
        _add_missing_columns(spark, path, table)
        _ENSURED.add(path)
        return path

    def create() -> None:
        if is_delta(spark, path):
            return
        writer = spark.createDataFrame([], table.schema).write.format("delta").mode("ignore")
        if table.partition_by:
            writer = writer.partitionBy(*table.partition_by)
        writer.save(path)

    with_retries(create, f"create {table.name}")
    _ENSURED.add(path)
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


def driver_rows(rows: "DataFrame", table: Table) -> "pa.Table | None":
    """rows as Arrow on the driver when the table is small and they are at most DRIVER_COMMIT_ROWS; else None
    (Spark writes them: the rows are computed again, which only happens past that bound)."""
    if not table.small:
        return None
    few = rows.limit(DRIVER_COMMIT_ROWS + 1).toArrow()
    return few if few.num_rows <= DRIVER_COMMIT_ROWS else None


def replace_where(
    spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame", predicate: str, run_id: str | None = None,
    before_attempt: Callable[[], None] | None = None, driver: bool = True,
) -> int:
    """Atomically replace the rows matching predicate with df: one Delta commit, nothing else touched.

    Returns the number of rows written (through Spark without a run id: -1). The commit carries the run id as
    its userMetadata, so the run finds its own commit's metrics even when other runs commit to the same table
    at the same time. Through Spark, Delta makes no commit when there is nothing to add and nothing to remove (a
    quiet day with no events): that is 0 rows; through delta-rs (a small table, `driver_rows`) the commit is
    made and removes whatever matched. driver=False: through Spark whatever the rows (they are known to be more
    than a driver commit takes).
    """
    path = ensure_table(spark, settings, table)
    rows = conform(df, table)
    if before_attempt is not None and table.small:
        before_attempt()  # the driver's rows are computed once, here: a retried commit writes the same ones
    few = driver_rows(rows, table) if driver else None
    if few is not None:
        return _driver_commit(settings, table, few, predicate, run_id)
    writer = rows.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if run_id:
        writer = writer.option("userMetadata", run_id)
    with_retries(lambda: writer.save(path), f"replace {table.name} {predicate}", before_attempt=before_attempt)
    if not run_id:
        return -1
    metrics = commit_metrics(spark, path, run_id)
    return int(metrics.get("numOutputRows", 0)) if metrics is not None else 0


def replace_interval(
    spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame", dataset: str, start: "date", end: "date",
    run_id: str | None = None, before_attempt: Callable[[], None] | None = None,
) -> int:
    """Atomically replace one dataset's logical dates [start, end) of a partitioned table with df."""
    return replace_where(spark, settings, table, df, interval_predicate(dataset, start, end), run_id, before_attempt)


def replace_interval_rows(
    spark: "SparkSession", settings: Settings, table: Table, rows: "pa.Table", dataset: str, start: "date",
    end: "date", run_id: str | None = None,
) -> int:
    """`replace_interval` with rows the driver already holds (Arrow): for a small table and at most
    DRIVER_COMMIT_ROWS rows one delta-rs commit, no Spark job; else the rows go to Spark as they are (nothing
    recomputed) and Spark commits them. Returns the rows written."""
    predicate = interval_predicate(dataset, start, end)
    if not table.small or rows.num_rows > DRIVER_COMMIT_ROWS:
        return replace_where(spark, settings, table, spark.createDataFrame(rows), predicate, run_id, driver=False)
    ensure_table(spark, settings, table)
    return _driver_commit(settings, table, rows, predicate, run_id)


def _driver_commit(settings: Settings, table: Table, rows: "pa.Table", predicate: str | None = None,
                   run_id: str | None = None) -> int:
    """One delta-rs commit of rows the driver holds (appended, or replacing what matches predicate), retried
    when it loses a race; returns the rows written."""
    what = f"replace {table.name} {predicate}" if predicate else f"append {table.name}"
    with_retries(lambda: delta_rs.write(settings, table.name, rows, predicate, run_id), what)
    return rows.num_rows


def append(spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame") -> None:
    path = ensure_table(spark, settings, table)
    rows = conform(df, table)
    few = driver_rows(rows, table)
    if few is not None:
        _driver_commit(settings, table, few)
        return
    with_retries(lambda: rows.write.format("delta").mode("append").save(path), f"append {table.name}")


def upsert(spark: "SparkSession", settings: Settings, table: Table, df: "DataFrame", keys: list[str]) -> None:
    """Insert df's rows, replacing the rows with the same keys: one MERGE, one commit."""
    from delta.tables import DeltaTable

    path = ensure_table(spark, settings, table)
    rows = conform(df, table)
    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)

    def merge() -> None:
        (DeltaTable.forPath(spark, path).alias("t").merge(rows.alias("s"), cond)
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())

    with_retries(merge, f"upsert {table.name}")


def table_version(spark: "SparkSession", path: str) -> int:
    """The current Delta version of a table: the lineage recorded with every run and model."""
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def commit_metrics(spark: "SparkSession", path: str, run_id: str) -> dict[str, str] | None:
    """The operation metrics of the latest commit this run made to the table (tagged with its run id),
    or None when the run made no commit to it."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    row = (
        DeltaTable.forPath(spark, path).history(50).where(F.col("userMetadata") == run_id)
        .orderBy(F.col("version").desc()).select("operationMetrics").first()
    )
    return None if row is None else dict(row[0] or {})


def last_commit_metrics(spark: "SparkSession", path: str) -> dict[str, str]:
    """The operation metrics of the table's latest commit (for single-writer tools such as the benchmark)."""
    from delta.tables import DeltaTable

    return dict(DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()[0] or {})
