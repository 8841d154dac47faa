"""Query the lakehouse by table name: every output and raw table as a view, printed for people or scripts."""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import TYPE_CHECKING, Any, Sequence

from tabulate import tabulate

from lakewatch.config import Settings
from lakewatch.errors import LakewatchError, QueryError
from lakewatch.lakehouse.sql_guard import check_read_only
from lakewatch.lakehouse.tables import OUTPUT_TABLES, RAW_DIR, join

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _list_dirs(spark: "SparkSession", root: str) -> list[str]:
    """Sub-folders of a lakehouse path, through Hadoop's file system so that s3a:// works as well."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(root)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return []
    return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isDirectory())


def register_views(spark: "SparkSession", settings: Settings) -> list[str]:
    """A temp view for each Delta table of the lakehouse: outputs by name, sources under raw/ by name."""
    from lakewatch.lakehouse.writes import is_delta

    names = []
    candidates = [(t.name, t.path(settings)) for t in OUTPUT_TABLES]
    raw_root = join(settings.lakehouse, RAW_DIR)
    candidates += [(name, join(raw_root, name)) for name in _list_dirs(spark, raw_root)]
    for name, path in candidates:
        if is_delta(spark, path):
            spark.read.format("delta").load(path).createOrReplaceTempView(name)
            names.append(name)
    return names


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Rows as a table for people, or csv / json (one object per line) for scripts."""
    if fmt == "table":
        return tabulate(rows, headers=list(columns), tablefmt="simple", floatfmt=".4g")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if fmt == "json":
        return "\n".join(json.dumps(dict(zip(columns, r)), default=str) for r in rows)
    raise LakewatchError(f"unknown format {fmt!r}: table, csv or json")


def run_sql(spark: "SparkSession", settings: Settings, statement: str, limit: int | None) -> tuple[list[str], list[tuple]]:
    """Run one read-only SQL statement over the lakehouse views; at most `limit` rows reach the driver.

    The statement is checked before Spark runs anything (lakehouse.sql_guard); an error in it (an unknown
    column, a type mismatch) is a QueryError with Spark's own first line.
    """
    from pyspark.errors import AnalysisException
    from pyspark.logger import PySparkLogger

    names = register_views(spark, settings)
    check_read_only(spark, statement, names)
    # PySpark logs an analysis error's whole stack trace as it raises it: here the error is the user's, and the
    # QueryError below says it in one line (only while the query is analysed: a runtime error keeps its trace)
    context_log = PySparkLogger.getLogger("SQLQueryContextLogger")
    level = context_log.level
    try:
        context_log.setLevel(logging.CRITICAL)
        try:
            df = spark.sql(statement)
        finally:
            context_log.setLevel(level)
        rows = [tuple(r) for r in (df.limit(limit) if limit else df).collect()]
    except AnalysisException as exc:
        raise QueryError(f"the query cannot run: {str(exc).splitlines()[0]}") from None
    return df.columns, rows
