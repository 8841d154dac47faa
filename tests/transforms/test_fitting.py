"""The seasonal profile's aggregations in Spark (the profile, and its cross-fitted reading for training), against
values worked out by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from pyspark.sql import functions as F

from lakewatch.transforms.entities import Located
from lakewatch.transforms.fitting import cross_fitted, fold_column, seasonal_profile, training_stats
from lakewatch.transforms.normalization import MAD_TO_STD
from lakewatch.transforms.seasonal import fold_of, fold_width


def test_bin_medians_their_spread_and_the_fallbacks_for_empty_bins(spark):
    at = lambda hour: datetime(2026, 1, 5, hour)  # noqa: E731 (UTC: two bins, [0h, 12h) and [12h, 24h))
    rows = [("a", at(1), 1.0), ("a", at(2), 2.0), ("a", at(3), 3.0), ("a", at(13), 10.0), ("a", at(14), 20.0),
            ("b", at(1), 5.0), ("b", at(2), 5.0), ("z", at(1), 99.0)]
    df = spark.createDataFrame(rows, "entity STRING, ts TIMESTAMP, x DOUBLE")
    loc = np.array([[0.5], [4.0], [7.0]])  # a, b, c: each entity's median, the fallback of an empty bin
    floor = np.array([[0.1], [0.2], [0.3]])
    p = seasonal_profile(df, ["x"], 2, ["a", "b", "c"], loc, floor)
    # a: bin 0 holds 1, 2, 3 (median 2), bin 1 holds 10, 20 (an approximate percentile is a value: 10);
    # deviations 1, 0, 1, 0, 10: median 1. b: bin 0 is 5, bin 1 empty (its loc), no spread (its floor).
    # c has no rows: loc and floor. z is not a known entity: ignored.
    assert p.median[:, :, 0].tolist() == [[2.0, 10.0], [5.0, 4.0], [7.0, 7.0]]
    assert p.scale[:, 0].tolist() == [MAD_TO_STD * 1.0, 0.2, 0.3]


def test_no_rows_gives_every_entity_its_fallbacks(spark):
    df = spark.createDataFrame([], "entity STRING, ts TIMESTAMP, x DOUBLE")
    p = seasonal_profile(df, ["x"], 4, ["a"], np.array([[1.5]]), np.array([[0.25]]))
    assert p.median.tolist() == [[[1.5]] * 4] and p.scale.tolist() == [[0.25]]


def _us(t: datetime) -> int:
    return int(t.replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


def test_folds_in_numpy_and_in_spark_agree_at_their_edges(spark):
    # a span of 10 us in 4 folds: each 3 us long (ceil), the last timestamp in the last fold
    assert fold_width(np.array([10]), 4).tolist() == [3]
    start, span = np.array([100] * 6), np.array([10] * 6)
    ts = np.array([100, 102, 103, 105, 106, 109])
    assert fold_of(ts, start, span, 4).tolist() == [0, 0, 1, 1, 2, 3]
    # the Spark expression, on timestamps a fold's width apart around a day's edges: the same folds as numpy's
    t0, width = _us(datetime(2026, 1, 5, 1)), 21 * 3_600_000_000 + 1
    edges = [t0, t0 + width - 1, t0 + width, t0 + 2 * width - 1, t0 + 2 * width, t0 + 3 * width, t0 + 4 * width - 4]
    df = spark.createDataFrame([(e,) for e in edges], "us LONG").select(F.timestamp_micros("us").alias("ts"))
    got = [r[0] for r in df.select(fold_column(F.col("ts"), F.lit(t0), F.lit(width), 4)).collect()]
    assert got == [0, 0, 1, 1, 2, 3, 3] == fold_of(np.array(edges), np.array([t0] * 7), np.array([4 * width - 3] * 7),
                                                    4).tolist()


def test_cross_fitted_profile_reads_each_row_against_the_other_folds(spark):
    # entity a: one row at 1h (bin 0) and one at 13h (bin 1) on four days, x = 1..8 in time order; its span
    # (3.5 days) cut in 4 equal folds holds one day each: {1, 2}, {3, 4}, {5, 6}, {7, 8}. Entity b: one row, 4.0
    times = [datetime(2026, 1, d, h) for d in (5, 6, 7, 8) for h in (1, 13)]
    rows = [("a", t, float(i + 1)) for i, t in enumerate(times)] + [("b", datetime(2026, 1, 5, 2), 4.0)]
    df = spark.createDataFrame(rows, "entity STRING, ts TIMESTAMP, x DOUBLE")
    stats = training_stats(df, ["x"])
    assert stats.span_us.tolist() == [[_us(times[0]), _us(times[-1])], [_us(datetime(2026, 1, 5, 2))] * 2]
    full = seasonal_profile(df, ["x"], 2, ["a", "b"], np.array([[4.5], [9.0]]), np.array([[0.5], [0.1]]))
    cf = cross_fitted(df, full, ["a", "b"], stats.span_us, 4)
    # a, bin 0 (the odd values 1, 3, 5, 7): leaving out fold 0 leaves 3, 5, 7 (median 5), fold 1: 1, 5, 7 (5),
    # fold 2: 1, 3, 7 (3), fold 3: 1, 3, 5 (3); bin 1 (2, 4, 6, 8) likewise 6, 6, 4, 4
    assert cf.folds[0, :, :, 0].tolist() == [[5.0, 6.0], [5.0, 6.0], [3.0, 4.0], [3.0, 4.0]]
    # b's one row is its fold 0, counted for folds 1-3 (bin 0: 4.0); leaving it out leaves fold 0's bin 0 empty, and
    # bin 1 has no rows at all: both keep the full profile's medians (bin 0: its one row, 4.0; bin 1: its loc, 9.0)
    assert cf.folds[1, :, :, 0].tolist() == [[4.0, 9.0]] * 4
    # a's spread: deviations from its full bin medians (3 and 4, approximate percentiles are values) 2, 2, 0, 0, 2,
    # 2, 4, 4: median 2
    assert cf.scale[0, 0] == full.scale[0, 0] == MAD_TO_STD * 2.0
    ts = np.array([_us(t) for t in times])
    located = Located(np.zeros(8, dtype=np.int64), np.zeros(8, dtype=bool))
    got = cf.residuals(np.arange(1.0, 9.0)[:, None], ts, located)[:, 0]
    expected = (np.arange(1.0, 9.0) - np.array([5, 6, 5, 6, 3, 4, 3, 4])) / (MAD_TO_STD * 2.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # scoring reads the full profile: each row against its bin's median over all four days, 3 and 4
    np.testing.assert_allclose(full.residuals(np.arange(1.0, 9.0)[:, None], ts, located)[:, 0],
                               (np.arange(1.0, 9.0) - np.array([3, 4] * 4)) / (MAD_TO_STD * 2.0), rtol=1e-6)
