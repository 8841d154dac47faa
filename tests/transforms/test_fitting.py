"""The seasonal profile's two aggregations in Spark, against values worked out by hand."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from lakewatch.transforms.fitting import seasonal_profile
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
