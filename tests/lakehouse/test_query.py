"""Tables by name through `lakewatch sql`, in every format, and read without Spark through delta-rs."""

import json
from datetime import date

from deltalake import DeltaTable

from lakewatch.cli import main
from lakewatch.data.intervals import Interval
from lakewatch.lakehouse.query import format_rows, run_sql
from lakewatch.lakehouse.tables import QUARANTINE
from lakewatch.pipeline.validate import run_validate
from tests.data.test_quality import ROWS, SCHEMA
from tests.helpers import small_spec, write_rows


def test_format_rows():
    cols, rows = ["a", "b"], [(1, "x"), (2, None)]
    assert format_rows(cols, rows, "csv") == "a,b\n1,x\n2,"
    assert [json.loads(line) for line in format_rows(cols, rows, "json").splitlines()] == [
        {"a": 1, "b": "x"}, {"a": 2, "b": None}
    ]
    assert format_rows(cols, rows, "table").splitlines()[0].split() == ["a", "b"]


def test_sql_over_tables_by_name_and_pandas_without_spark(spark, settings, capsys):
    write_rows(spark, settings, "small", ROWS, SCHEMA)
    run_validate(spark, settings, small_spec(partition_column="date"), Interval(date(2026, 3, 4), date(2026, 3, 5)))
    cols, rows = run_sql(spark, settings, "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason ORDER BY n DESC, reason", None)
    assert cols == ["reason", "n"] and rows[0] == ("out_of_range:cpu", 2)
    cols, rows = run_sql(spark, settings, "SELECT count(*) FROM small", None)
    assert rows == [(len(ROWS),)]
    assert main(["--lakehouse", settings.lakehouse, "sql", "SELECT dataset, rows_in FROM runs", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == ["dataset,rows_in", "small,10"]
    pdf = DeltaTable(QUARANTINE.path(settings)).to_pandas()
    assert len(pdf) == 9 and set(pdf.columns) == set(QUARANTINE.columns)


def test_cli_error_names_the_problem(settings, capsys):
    assert main(["--lakehouse", settings.lakehouse, "validate", "--dataset", "nope", "--date", "2026-03-04"]) == 2
    assert "dataset spec not found: 'nope'" in capsys.readouterr().err
