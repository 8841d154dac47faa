"""`lakewatch sql` reads and never writes: every write, path and JVM call is refused before Spark runs it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lakewatch.cli import main
from lakewatch.data.intervals import Interval
from lakewatch.errors import QueryError
from lakewatch.lakehouse.query import run_sql
from lakewatch.lakehouse.tables import QUARANTINE, RUNS
from lakewatch.lakehouse.writes import table_version
from lakewatch.pipeline.validate import run_validate
from tests.data.test_quality import ROWS, SCHEMA
from tests.helpers import small_spec, write_rows


@pytest.fixture()
def lake(spark, settings):
    write_rows(spark, settings, "small", ROWS, SCHEMA)
    run_validate(spark, settings, small_spec(partition_column="date"), Interval(date(2026, 3, 4), date(2026, 3, 5)))
    return settings


def refused(settings, tmp_path: Path) -> list[str]:
    q = QUARANTINE.path(settings)
    return [
        "DELETE FROM quarantine WHERE reason LIKE 'null%'",
        "UPDATE runs SET status = 'failed'",
        f"DELETE FROM delta.`{settings.lakehouse}/runs`",
        f"INSERT INTO delta.`{q}` SELECT * FROM quarantine",
        f"INSERT OVERWRITE DIRECTORY '{tmp_path}/out' SELECT * FROM quarantine",
        "SELECT * FROM text.`/etc/hostname`",
        f"SELECT * FROM parquet.`{q}`",
        "SELECT * FROM quarantine WHERE run_id IN (SELECT value FROM text.`/etc/hostname`)",
        "WITH x AS (SELECT * FROM json.`/etc`) SELECT * FROM x",
        "SELECT * FROM read_files('/etc/hostname')",
        "SELECT reflect('java.lang.System', 'exit', 0)",
        "CREATE TABLE t AS SELECT * FROM quarantine",
        "DROP VIEW quarantine",
        "CACHE TABLE quarantine",
        "SET spark.sql.ansi.enabled = false",
        "SELECT 1; DELETE FROM runs",
    ]


def test_every_write_and_every_path_outside_the_lakehouse_is_refused(spark, lake, tmp_path):
    before = {t.name: table_version(spark, t.path(lake)) for t in (QUARANTINE, RUNS)}
    for statement in refused(lake, tmp_path):
        with pytest.raises(QueryError):
            run_sql(spark, lake, statement, 10)
    assert {t.name: table_version(spark, t.path(lake)) for t in (QUARANTINE, RUNS)} == before
    assert not (tmp_path / "out").exists()


def test_queries_over_the_tables_still_run(spark, lake):
    assert run_sql(spark, lake, "WITH q AS (SELECT reason FROM quarantine) SELECT count(*) FROM q", None)[1] == [(9,)]
    names = [r[1] for r in run_sql(spark, lake, "SHOW TABLES", None)[1]]
    assert {"quarantine", "runs", "small"} <= set(names)
    cols = [r[0] for r in run_sql(spark, lake, "DESCRIBE quarantine", None)[1]]
    assert cols[:3] == ["dataset", "entity", "ts"]
    assert run_sql(spark, lake, "SELECT count(*) FROM range(3)", None)[1] == [(3,)]


def test_the_cli_says_why_in_one_line(spark, lake, capfd):
    assert main(["--lakehouse", lake.lakehouse, "sql", "DELETE FROM runs"]) == 2
    err = capfd.readouterr().err
    assert "only reads" in err and "DeleteFromTable" in err and len(err.strip().splitlines()) == 1
    # an unknown column: Spark's first line, without the stack trace PySpark logs as it raises the error
    assert main(["--lakehouse", lake.lakehouse, "sql", "SELECT nope FROM runs"]) == 2
    err = capfd.readouterr().err
    assert "the query cannot run" in err and "UNRESOLVED_COLUMN" in err and len(err.strip().splitlines()) == 1
