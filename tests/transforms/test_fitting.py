"""The seasonal profile's aggregations in Spark (the profile, and its cross-fitted reading for training), against
values worked out by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from lakewatch.transforms.entities import Located
from lakewatch.transforms.fitting import cross_fitted, seasonal_profile
from lakewatch.transforms.normalization import MAD_TO_STD


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


def test_cross_fitted_profile_reads_each_row_against_the_other_folds(spark):
    # entity a: one row at 1h (bin 0) and one at 13h (bin 1) on four days, x = 1..8 in time order; its span
    # (3.5 days) cut in 4 equal folds holds one day each: {1, 2}, {3, 4}, {5, 6}, {7, 8}
    times = [datetime(2026, 1, d, h) for d in (5, 6, 7, 8) for h in (1, 13)]
    rows = [("a", t, float(i + 1)) for i, t in enumerate(times)] + [("b", datetime(2026, 1, 5, 2), 4.0)]
    df = spark.createDataFrame(rows, "entity STRING, ts TIMESTAMP, x DOUBLE")
    full = seasonal_profile(df, ["x"], 2, ["a", "b"], np.array([[4.5], [4.0]]), np.array([[0.1], [0.1]]))
    span = np.array([[_us(times[0]), _us(times[-1])], [_us(datetime(2026, 1, 5, 2))] * 2])
    cf = cross_fitted(df, full, ["a", "b"], span, 4)
    # a, bin 0 (the odd values 1, 3, 5, 7): leaving out fold 0 leaves 3, 5, 7 (median 5), fold 1: 1, 5, 7 (5),
    # fold 2: 1, 3, 7 (3), fold 3: 1, 3, 5 (3); bin 1 (2, 4, 6, 8) likewise 6, 6, 4, 4
    assert cf.folds[0, :, :, 0].tolist() == [[5.0, 6.0], [5.0, 6.0], [3.0, 4.0], [3.0, 4.0]]
    # b's one row is in its fold 0, so no other fold has rows: every fold keeps the full profile's medians
    assert cf.folds[1, :, :, 0].tolist() == [full.median[1, :, 0].tolist()] * 4
    ts = np.array([_us(t) for t in times])
    located = Located(np.zeros(8, dtype=np.int64), np.zeros(8, dtype=bool))
    got = cf.residuals(np.arange(1.0, 9.0)[:, None], ts, located)[:, 0]
    expected = (np.arange(1.0, 9.0) - np.array([5, 6, 5, 6, 3, 4, 3, 4])) / full.scale[0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # scoring reads the full profile, training the cross-fitted one: they share the spread, not the medians
    assert (cf.scale == full.scale).all() and (cf.median == full.median).all()
    np.testing.assert_allclose(full.residuals(np.arange(1.0, 9.0)[:, None], ts, located)[:, 0],
                               (np.arange(1.0, 9.0) - full.median[0, [0, 1] * 4, 0]) / full.scale[0, 0], rtol=1e-6)
