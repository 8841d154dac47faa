"""Drift in Spark: the one-pass summaries agree with the numpy definitions, and statuses come out right."""

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from lakewatch.config import DriftSettings
from lakewatch.monitoring.drift import (
    Column_,
    current_summaries,
    drift_records,
    quantile_sample,
    reference_profiles,
)
from lakewatch.monitoring.drift_stats import feature_drift, profile_from_values, summary_from_values


def frame(spark, **cols):
    n = len(next(iter(cols.values())))
    rows = [tuple(None if (v is None or (isinstance(v, float) and math.isnan(v))) else float(v) for v in vals)
            for vals in zip(*cols.values())]
    assert len(rows) == n
    return spark.createDataFrame(rows, ", ".join(f"{c} DOUBLE" for c in cols))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    ref = {"x": rng.normal(50, 10, 8000), "c": np.full(8000, 7.0), "y": rng.lognormal(0, 1, 8000)}
    cur_same = {"x": rng.normal(50, 10, 4000), "c": np.full(4000, 7.0), "y": rng.lognormal(0, 1, 4000)}
    cur_shift = {"x": rng.normal(60, 10, 4000), "c": np.full(4000, 9.0), "y": rng.lognormal(0, 1, 4000)}
    return ref, cur_same, cur_shift


def test_spark_profiles_and_summaries_match_numpy(spark, data):
    ref, _, shift = data
    cols = [Column_("x", 0, 100), Column_("c"), Column_("y", 0, None)]
    profiles = {p.name: p for p in reference_profiles(frame(spark, **ref), cols)}
    summaries = current_summaries(frame(spark, **shift), cols, profiles)
    for c in cols:
        exact_p = profile_from_values(c.name, ref[c.name], lo=c.lo, hi=c.hi)
        exact_s = summary_from_values(profiles[c.name], shift[c.name], lo=c.lo, hi=c.hi)
        got = feature_drift(profiles[c.name], summaries[c.name])
        want = feature_drift(exact_p, exact_s)
        # below the sample size every value counts: the same quantiles, edges and bins as numpy's
        for metric in ("psi", "ks", "js", "wasserstein", "null_rate_change", "out_of_range_rate_change"):
            assert got[metric] == pytest.approx(want[metric], abs=1e-9), (c.name, metric)


def test_shifted_feature_alerts_and_unchanged_is_ok(spark, data):
    ref, same, shift = data
    cols = [Column_("x"), Column_("c"), Column_("y")]
    profiles = {p.name: p for p in reference_profiles(frame(spark, **ref), cols)}
    cfg = DriftSettings()

    def statuses(cur):
        recs = drift_records(profiles, current_summaries(frame(spark, **cur), cols, profiles), cfg)
        return {(f, m): s for f, m, _, _, s in recs}

    shifted, unchanged = statuses(shift), statuses(same)
    assert shifted[("x", "psi")] == shifted[("x", "ks")] == shifted[("x", "wasserstein")] == "alert"
    assert shifted[("c", "psi")] == "alert"  # a constant feature that moved
    assert {s for (f, _), s in unchanged.items()} == {"ok"}


def test_empty_null_and_one_row_intervals_are_defined(spark, data):
    ref, _, _ = data
    cols = [Column_("x"), Column_("c"), Column_("y")]
    profiles = {p.name: p for p in reference_profiles(frame(spark, **ref), cols)}
    cfg = DriftSettings()
    all_null = frame(spark, x=[float("nan")] * 3, c=[float("nan")] * 3, y=[float("nan")] * 3)
    one_row = frame(spark, x=[50.0], c=[7.0], y=[1.0])
    empty = one_row.limit(0)
    for df in (all_null, one_row, empty):
        recs = drift_records(profiles, current_summaries(df, cols, profiles), cfg)
        assert len(recs) == 3 * 7 and all(s in {"ok", "warn", "alert", "unknown"} for *_, s in recs)
    null_recs = {(f, m): (v, s) for f, m, v, _, s in drift_records(profiles, current_summaries(all_null, cols, profiles), cfg)}
    assert null_recs[("x", "null_rate_change")] == (1.0, "alert")
    assert null_recs[("x", "psi")][1] == "unknown"


def test_quantiles_from_a_sample_keep_every_count_exact(spark, data):
    """On a large interval the quantiles come from a hashed sample of rows (the same rows whatever the
    partitioning); counts, bins, nulls, out-of-range and means stay those of every row; the statistics stay close."""
    ref, _, shift = data
    cols = [Column_("x", 0, 100), Column_("c"), Column_("y", 0, None)]
    profiles = {p.name: p for p in reference_profiles(frame(spark, **ref), cols)}
    n = len(shift["x"])
    rows = [(f"h{i % 4}", datetime(2026, 1, 1) + timedelta(minutes=i), float(x), float(c), float(y))
            for i, (x, c, y) in enumerate(zip(shift["x"], shift["c"], shift["y"]))]
    df = spark.createDataFrame(rows, "entity STRING, ts TIMESTAMP, x DOUBLE, c DOUBLE, y DOUBLE")
    assert quantile_sample(n, n) == quantile_sample(None, 10) == quantile_sample(n, 0) == 1.0
    share = quantile_sample(n, 1000)
    assert share == pytest.approx(0.25)
    every = current_summaries(df, cols, profiles)
    sampled = current_summaries(df, cols, profiles, share)
    again = current_summaries(df.repartition(3), cols, profiles, share)
    for c in cols:
        e, s = every[c.name], sampled[c.name]
        assert (s.count, s.n_rows, s.null_count, s.out_of_range_count, list(s.bin_counts)) == \
            (e.count, e.n_rows, e.null_count, e.out_of_range_count, list(e.bin_counts))
        assert s.mean == pytest.approx(e.mean, rel=1e-9)
        assert again[c.name].quantiles == s.quantiles  # the same rows, so the same (exact) quantiles
        got, want = feature_drift(profiles[c.name], s), feature_drift(profiles[c.name], e)
        for metric in ("psi", "ks", "wasserstein"):
            assert got[metric] == pytest.approx(want[metric], abs=0.06), (c.name, metric)  # ~1/sqrt(1000) apart
    assert sampled["x"].quantiles != every["x"].quantiles  # they did come from the sample
