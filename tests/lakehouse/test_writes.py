"""Commits: retries start over; a small table's few rows are committed from the driver (delta-rs), Spark's
tables and readers see them as their own."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from lakewatch.lakehouse import writes
from lakewatch.lakehouse.tables import EVENTS, RUNS


class ConcurrentAppendException(Exception):
    """Named as Delta's: a lost race."""


def test_a_lost_race_is_retried_and_each_attempt_starts_over(monkeypatch):
    monkeypatch.setattr(writes.time, "sleep", lambda s: None)
    events: list[str] = []

    def action() -> None:
        events.append("write")
        if events.count("write") == 1:
            raise ConcurrentAppendException("a concurrent writer committed first")

    writes.with_retries(action, "replace scores", before_attempt=lambda: events.append("reset"))
    assert events == ["reset", "write", "reset", "write"]


def test_any_other_error_is_raised_at_once():
    events: list[str] = []

    def action() -> None:
        events.append("write")
        raise ValueError("bad rows")

    with pytest.raises(ValueError, match="bad rows"):
        writes.with_retries(action, "replace scores", before_attempt=lambda: events.append("reset"))
    assert events == ["reset", "write"]


def _commits(path: str) -> list[dict]:
    """Every commitInfo of a table's log, oldest first."""
    infos = []
    for log in sorted(Path(path, "_delta_log").glob("*.json")):
        infos += [json.loads(line)["commitInfo"] for line in log.read_text().splitlines() if '"commitInfo"' in line]
    return infos


def _events(spark, dataset: str, starts: list[datetime]):
    rows = [(f"e{i}", dataset, "host-1", s, s + timedelta(minutes=5), 2, s, 9.5, 0.999,
             "high", [("cpu", 0.75), ("mem", 0.25)], "m", 1, "run", s.date()) for i, s in enumerate(starts)]
    return spark.createDataFrame(rows, EVENTS.schema)


def test_a_small_tables_commits_go_through_the_driver_and_replace_exactly_their_interval(spark, settings):
    day = date(2026, 3, 2)
    # a microsecond that a float of seconds would lose
    first = [datetime(2026, 3, 2, 1, 30, 0, 123457), datetime(2026, 3, 2, 23, 59, 59, 999999)]
    assert writes.replace_interval(spark, settings, EVENTS, _events(spark, "a", first), "a", day,
                                   day + timedelta(days=1), "run-1") == 2
    assert writes.replace_interval(spark, settings, EVENTS, _events(spark, "b", first[:1]), "b", day,
                                   day + timedelta(days=1), "run-2") == 1
    again = [datetime(2026, 3, 2, 12, 0)]
    assert writes.replace_interval(spark, settings, EVENTS, _events(spark, "a", again), "a", day,
                                   day + timedelta(days=1), "run-3") == 1

    path = EVENTS.path(settings)
    read = spark.read.format("delta").load(path)
    assert sorted((r["dataset"], r["start_ts"]) for r in read.collect()) == [("a", again[0]), ("b", first[0])]
    row = read.where("dataset = 'b'").first()
    assert row["top_features"][0]["feature"] == "cpu" and row["end_ts"] == first[0] + timedelta(minutes=5)
    commits = _commits(path)
    # the table's creation is Spark's; each replace is one delta-rs commit carrying its run id, as Spark's would
    assert [c.get("userMetadata") for c in commits[1:]] == ["run-1", "run-2", "run-3"]
    assert all(c["engineInfo"].startswith("delta-rs") for c in commits[1:])
    assert writes.commit_metrics(spark, path, "run-3") is not None
    # a quiet rerun (no events) removes the interval's rows: an empty commit, not none
    empty = _events(spark, "a", []).limit(0)
    assert writes.replace_interval(spark, settings, EVENTS, empty, "a", day, day + timedelta(days=1), "run-4") == 0
    assert [r["dataset"] for r in spark.read.format("delta").load(path).collect()] == ["b"]


def test_more_rows_than_the_driver_takes_are_written_by_spark(spark, settings, monkeypatch):
    monkeypatch.setattr(writes, "DRIVER_COMMIT_ROWS", 2)
    day = date(2026, 3, 2)
    starts = [datetime(2026, 3, 2, h) for h in range(3)]
    assert writes.replace_interval(spark, settings, EVENTS, _events(spark, "a", starts), "a", day,
                                   day + timedelta(days=1), "run-1") == 3
    assert _commits(EVENTS.path(settings))[-1]["engineInfo"].startswith("Apache-Spark")
    assert spark.read.format("delta").load(EVENTS.path(settings)).count() == 3


def test_arrow_rows_beyond_a_driver_commit_are_committed_by_spark_as_they_are(spark, settings, monkeypatch):
    day = date(2026, 3, 2)
    starts = [datetime(2026, 3, 2, h, 0, 0, 123457) for h in range(3)]
    # as write_events builds them: the run's version an int64, where the table has an int
    spark_rows = _events(spark, "a", starts).toArrow()
    rows = spark_rows.set_column(spark_rows.schema.get_field_index("model_version"), "model_version",
                                 spark_rows.column("model_version").cast(pa.int64()))
    monkeypatch.setattr(writes, "DRIVER_COMMIT_ROWS", 2)
    assert writes.replace_interval_rows(spark, settings, EVENTS, rows, "a", day, day + timedelta(days=1), "run-1") == 3
    assert _commits(EVENTS.path(settings))[-1]["engineInfo"].startswith("Apache-Spark")
    got = spark.read.format("delta").load(EVENTS.path(settings)).orderBy("start_ts").toArrow()
    assert got.select(rows.column_names).to_pylist() == spark_rows.to_pylist()
    monkeypatch.setattr(writes, "DRIVER_COMMIT_ROWS", 3)  # three fit: the driver's commit replaces them
    assert writes.replace_interval_rows(spark, settings, EVENTS, rows.slice(0, 3), "a", day, day + timedelta(days=1),
                                        "run-2") == 3
    assert _commits(EVENTS.path(settings))[-1]["engineInfo"].startswith("delta-rs")
    assert spark.read.format("delta").load(EVENTS.path(settings)).count() == 3


def test_the_driver_checkpoints_the_log_as_spark_would(spark, settings):
    rest = [F.lit(None).cast(f.dataType).alias(f.name) for f in RUNS.schema.fields[3:]]
    for i in range(writes.delta_rs.CHECKPOINT_INTERVAL + 1):  # version 0 is the creation: 1 ... 11
        row = spark.createDataFrame([(f"run-{i}", "score", "a")], "run_id STRING, job STRING, dataset STRING")
        writes.append(spark, settings, RUNS, row.select("*", *rest))
    log = Path(RUNS.path(settings), "_delta_log")
    assert (log / f"{writes.delta_rs.CHECKPOINT_INTERVAL:020d}.checkpoint.parquet").exists()
    assert spark.read.format("delta").load(RUNS.path(settings)).count() == writes.delta_rs.CHECKPOINT_INTERVAL + 1
