"""Each validation rule, the counts invariant, reruns, and a spec that names a missing column."""

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakewatch.data.intervals import Interval
from lakewatch.data.quality import flag_faults, flag_rows
from lakewatch.errors import DataError
from lakewatch.lakehouse.tables import QUARANTINE, RUNS
from lakewatch.lakehouse.writes import table_version
from lakewatch.pipeline.validate import run_validate
from tests.helpers import small_spec, write_rows

DAY = Interval(date(2026, 3, 4), date(2026, 3, 5))
SCHEMA = "host STRING, ts TIMESTAMP, cpu DOUBLE, latency DOUBLE, date DATE"
NAN, INF = float("nan"), float("inf")


def t(minute: int) -> datetime:
    return datetime(2026, 3, 4, 0, minute)


ROWS = [
    ("a", t(0), 50.0, 10.0, date(2026, 3, 4)),  # valid
    (None, t(5), 50.0, 10.0, date(2026, 3, 4)),
    ("a", None, 50.0, 10.0, date(2026, 3, 4)),
    ("a", t(10), NAN, 10.0, date(2026, 3, 4)),
    ("a", t(15), 50.0, INF, date(2026, 3, 4)),
    ("a", t(20), 150.0, 10.0, date(2026, 3, 4)),
    ("a", t(25), -1.0, 10.0, date(2026, 3, 4)),
    ("a", t(30), None, 10.0, date(2026, 3, 4)),
    ("a", t(0), 50.0, 10.0, date(2026, 3, 4)),  # duplicate of the first
    (None, t(35), 150.0, 10.0, date(2026, 3, 4)),  # two faults
    ("b", datetime(2026, 3, 5, 0, 0), 1.0, 1.0, date(2026, 3, 5)),  # another day
]
EXPECTED = [
    (None, t(5), "null_entity"),
    ("a", None, "null_timestamp"),
    ("a", t(10), "nan_or_inf:cpu"),
    ("a", t(15), "nan_or_inf:latency"),
    ("a", t(20), "out_of_range:cpu"),
    ("a", t(25), "out_of_range:cpu"),
    ("a", t(30), "null:cpu"),
    ("a", t(0), "duplicate_key"),
    (None, t(35), "null_entity; out_of_range:cpu"),
]


@pytest.fixture()
def spec():
    return small_spec(partition_column="date")


def quarantine(spark, settings):
    return spark.read.format("delta").load(QUARANTINE.path(settings))


def test_every_rule_sends_its_rows_to_quarantine_with_the_reason(spark, settings, spec):
    write_rows(spark, settings, "small", ROWS, SCHEMA)
    record = run_validate(spark, settings, spec, DAY, run_id="r1")
    got = quarantine(spark, settings).select("entity", "ts", "reason")
    expected = spark.createDataFrame(EXPECTED, "entity STRING, ts TIMESTAMP, reason STRING")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert (record.rows_in, record.rows_valid, record.rows_quarantined) == (10, 1, 9)
    assert record.rows_in == record.rows_valid + record.rows_quarantined
    row = quarantine(spark, settings).where("reason = 'out_of_range:cpu' AND ts = '2026-03-04 00:20:00'").first()
    assert '"cpu":150.0' in row["row"] and row["run_id"] == "r1" and row["logical_date"] == date(2026, 3, 4)


def test_rerun_replaces_and_never_duplicates(spark, settings, spec):
    write_rows(spark, settings, "small", ROWS, SCHEMA)
    run_validate(spark, settings, spec, DAY, run_id="r1")
    run_validate(spark, settings, spec, DAY, run_id="r2")
    q = quarantine(spark, settings)
    assert q.count() == 9
    assert [r[0] for r in q.select("run_id").distinct().collect()] == ["r2"]
    runs = spark.read.format("delta").load(RUNS.path(settings))
    assert runs.where("status = 'success'").count() == 2


def test_other_days_are_left_alone(spark, settings, spec):
    rows = ROWS + [("c", datetime(2026, 3, 5, 1, 0), 500.0, 1.0, date(2026, 3, 5))]
    write_rows(spark, settings, "small", rows, SCHEMA)
    run_validate(spark, settings, spec, Interval(date(2026, 3, 5), date(2026, 3, 6)), run_id="day5")
    run_validate(spark, settings, spec, DAY, run_id="day4")
    by_day = {r[0]: r[1] for r in quarantine(spark, settings).groupBy("logical_date").count().collect()}
    assert by_day == {date(2026, 3, 4): 9, date(2026, 3, 5): 1}


def test_value_that_does_not_cast(spark, settings):
    rows = [("a", t(0), "42", 1.0), ("a", t(5), "abc", 1.0), ("a", t(10), " 7.5 ", 1.0)]
    write_rows(spark, settings, "small", rows, "host STRING, ts TIMESTAMP, cpu STRING, latency DOUBLE")
    record = run_validate(spark, settings, small_spec(), DAY, run_id="cast")
    reasons = [r[0] for r in quarantine(spark, settings).select("reason").collect()]
    assert reasons == ["not_numeric:cpu"]
    assert (record.rows_in, record.rows_valid, record.rows_quarantined) == (3, 2, 1)


def test_missing_column_fails_before_anything_is_written(spark, settings, spec):
    write_rows(spark, settings, "small", ROWS, SCHEMA)
    run_validate(spark, settings, spec, DAY, run_id="ok")
    before = table_version(spark, QUARANTINE.path(settings))
    bad = small_spec(partition_column="date", features=[{"name": "cpu"}, {"name": "memory_mb"}])
    with pytest.raises(DataError, match="memory_mb"):
        run_validate(spark, settings, bad, DAY, run_id="bad")
    assert table_version(spark, QUARANTINE.path(settings)) == before
    failed = spark.read.format("delta").load(RUNS.path(settings)).where(F.col("run_id") == "bad").first()
    assert failed["status"] == "failed" and "memory_mb" in failed["error"]


DUPLICATED = [
    ("a", t(0), 50.0, 10.0),
    ("a", t(0), 40.0, 99.0),  # the same key, smaller cpu: this one is kept
    ("a", t(0), None, 1.0),  # a fault of its own: quarantined for it, not as a duplicate
    ("b", t(5), 1.0, 2.0),
    ("b", t(5), 1.0, 2.0),  # exact copies: one is kept
    ("b", t(5), 1.0, 2.0),
    ("b", t(10), 3.0, 4.0),  # its key once: valid
]
DUPLICATED_EXPECTED = sorted([
    ("a", 0, 50.0, ("duplicate_key",)), ("a", 0, 40.0, ()), ("a", 0, -1.0, ("null:cpu",)),
    ("b", 5, 1.0, ("duplicate_key",)), ("b", 5, 1.0, ("duplicate_key",)), ("b", 5, 1.0, ()), ("b", 10, 3.0, ()),
])


@pytest.mark.parametrize("max_keys", [100, 1], ids=["duplicated-keys-ranked", "every-row-ranked"])
def test_duplicated_keys_keep_the_first_clean_row_by_value(spark, max_keys):
    """The duplicate rule ranks only the rows of duplicated keys, or every row when there are more such keys
    than max_keys (here 2): the same rows are kept either way, and a duplicate carries its row as given."""
    spec = small_spec()
    raw = spark.createDataFrame(DUPLICATED, "host STRING, ts TIMESTAMP, cpu DOUBLE, latency DOUBLE")
    got, _ = flag_rows(raw, spec, max_keys=max_keys)
    assert got.columns == flag_faults(raw, spec).columns
    rows = got.collect()
    assert sorted((r["entity"], r["ts"].minute, -1.0 if r["cpu"] is None else r["cpu"], tuple(r["reasons"]))
                  for r in rows) == DUPLICATED_EXPECTED
    copies = sorted(r["row"] for r in rows if r["reasons"] == ["duplicate_key"])
    assert '"host":"a"' in copies[0] and '"cpu":50.0' in copies[0] and '"latency":10.0' in copies[0]
    assert all('"host":"b"' in c and '"cpu":1.0' in c for c in copies[1:])
