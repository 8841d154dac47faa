"""Events from anomalous rows: hand-grouped cases, the same events in Spark, and ids as Spark has always hashed
them (so that feedback on an event survives a rerun)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from lakewatch.monitoring.events import (EventKey, EventRules, Spacings, anomaly_schema, event_starts,
                                         group_anomalies, group_events, spark_timestamp_string)

KEY = EventKey("demo_metrics", "demo", 3)
T0 = 1_772_409_600_000_000  # 2026-03-02T00:00Z in microseconds
MIN_US = 60_000_000
RULES = EventRules(merge_points=2.0)  # gap allowed: 2.5 spacings


def rows(points: list[tuple[str, int, float, float, str]]) -> pa.Table:
    """(entity, minute, score, calibrated, top feature) -> anomalous rows as a scoring pass collects them."""
    return pa.table({
        "entity": [p[0] for p in points],
        "ts": pa.array([T0 + p[1] * MIN_US for p in points], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "score": [p[2] for p in points], "calibrated": [p[3] for p in points],
        "top_features": [[{"feature": p[4], "share": 1.0}] for p in points],
    }, schema=anomaly_schema())


# a: every 5 minutes (its own spacing); b and c: unknown, the global spacing of 10 minutes. Unsorted on purpose.
POINTS = [
    ("a", 20, 2.0, 0.99995, "lat"),  # a's second event: 20 is 15 minutes after 5 (> 12.5)
    ("a", 0, 1.0, 0.9997, "cpu"),  # the highest calibrated of a's first event, not its peak
    ("a", 5, 3.0, 0.9990, "mem"),  # the peak (the highest score) of a's first event
    ("b", 0, 5.0, 0.999995, "gc"),
    ("b", 25, 4.0, 0.9, "io"),  # 25 minutes later: within 2.5 x 10 minutes, the same event
    ("c", 7, 0.5, 0.9992, "net"),
]
SPACINGS = Spacings({"a": 300.0}, 600.0)


def sorted_events(table: pa.Table) -> dict:
    return table.sort_by([("entity", "ascending"), ("start_ts", "ascending")]).to_pydict()


def test_events_are_grouped_by_each_entitys_spacing_with_the_peak_and_its_features():
    d = sorted_events(group_anomalies(rows(POINTS), RULES, SPACINGS, 0.001, KEY))
    at = lambda minute: datetime.fromtimestamp((T0 + minute * MIN_US) / 1e6, tz=timezone.utc)  # noqa: E731
    assert d["entity"] == ["a", "a", "b", "c"]
    assert d["start_ts"] == [at(0), at(20), at(0), at(7)] and d["end_ts"] == [at(5), at(20), at(25), at(7)]
    assert d["n_points"] == [2, 1, 2, 1] and d["peak_ts"] == [at(5), at(20), at(0), at(7)]
    assert d["peak_score"] == [3.0, 2.0, 5.0, 0.5]
    assert d["peak_calibrated"] == [0.9997, 0.99995, 0.999995, 0.9992]  # the event's highest, not the peak's
    # alarm rate / p of the highest calibrated: 0.001 / 0.0003 = 3.3, / 0.00005 = 20, / 0.000005 = 200, / 0.0008
    assert d["severity"] == ["medium", "high", "critical", "low"]
    assert [t[0]["feature"] for t in d["top_features"]] == ["mem", "lat", "gc", "net"]


def test_too_short_events_are_not_raised_and_no_rows_make_no_events():
    got = sorted_events(group_anomalies(rows(POINTS), EventRules(merge_points=2.0, min_points=2), SPACINGS, 0.001,
                                        KEY))
    assert got["entity"] == ["a", "b"] and got["n_points"] == [2, 2]
    assert group_anomalies(rows([]), RULES, SPACINGS, 0.001, KEY).num_rows == 0


def test_event_starts_follow_the_same_rule():
    ts = np.array([0, 5, 20, 25, 30, 60]) * MIN_US
    flags = np.array([True, True, True, False, True, True])
    # 0 and 5 one event; 20 starts another, 30 (10 minutes after 20) is in it; 60 alone
    assert event_starts(ts, flags, RULES, 300.0).tolist() == [True, False, True, False, False, True]
    assert event_starts(ts, flags, EventRules(2.0, min_points=2), 300.0).tolist() == [True, False, True, False,
                                                                                        False, False]
    assert not event_starts(ts, np.zeros(6, bool), RULES, 300.0).any()


def test_spark_groups_the_same_events_with_the_ids_spark_hashes(spark):
    table = rows(POINTS)
    df = spark.createDataFrame(table.to_pandas()).withColumn("is_anomaly", F.lit(True))
    in_spark = group_events(df, RULES, SPACINGS, 0.001, KEY).withColumn("top_features", F.to_json("top_features"))
    got = in_spark.toPandas().sort_values("event_id").reset_index(drop=True)
    local = group_anomalies(table, RULES, SPACINGS, 0.001, KEY).to_pandas().sort_values("event_id")
    local = local.reset_index(drop=True)
    for c in ("start_ts", "end_ts", "peak_ts"):
        local[c] = local[c].dt.tz_localize(None)
    local["top_features"] = [json.dumps([dict(t) for t in v], separators=(",", ":")) for v in local["top_features"]]
    pd.testing.assert_frame_equal(got, local, check_dtype=False)
    # the id: sha256 of dataset|entity|start as Spark casts it to a string|model|version, its first 20 hex digits
    want = df.groupBy("entity").agg(F.min("ts").alias("start")).where("entity = 'b'").select(F.substring(F.sha2(
        F.concat_ws("|", F.lit(KEY.dataset), "entity", F.col("start").cast("string"), F.lit(KEY.model_name),
                    F.lit(str(KEY.model_version))), 256), 1, 20)).first()[0]
    assert want in set(local["event_id"])


@pytest.mark.parametrize("micros", [0, 500_000, 123_456, 100])
def test_timestamps_are_written_as_spark_casts_them(spark, micros):
    us = T0 + 3_723 * 1_000_000 + micros
    want = spark.sql(f"SELECT CAST(timestamp_micros({us}) AS STRING)").first()[0]
    assert spark_timestamp_string(us) == want
