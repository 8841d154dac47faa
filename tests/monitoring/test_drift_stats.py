"""Drift statistics against scipy on the same data, and the edge cases (no Spark).

Tolerances, and why:
- PSI, JS: computed here directly on the same bins with numpy/scipy, so only float rounding: 1e-9.
- KS: ours is read off two 101-point quantile functions, linear in between. Between two consecutive
  quantiles lies 1% of the mass, so each side's CDF is off by < 0.01: |D - D_exact| < 0.02. (Seen: < 0.006.)
- Wasserstein: trapezoid on 101 quantiles, the 1% end intervals taken at the 1st/99th percentile. On
  n >= 20000 draws the error vs scipy is max(0.02 std, 5%) (seen: < 0.014 std over 20 seeds, lognormal worst).
- KS p-value: the same asymptotic formula as scipy's ks_2samp(method='asymp'), given the same D: 1e-9.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lakewatch.monitoring.drift_stats import (
    DRIFT_METRICS,
    PSI_EPSILON,
    QUANTILE_PROBS,
    CurrentSummary,
    FeatureProfile,
    anomaly_rate_test,
    bin_counts,
    feature_drift,
    js_distance,
    ks_pvalue,
    ks_statistic,
    profile_from_values,
    psi,
    rate_change,
    status_of,
    summary_from_values,
    wasserstein_scaled,
)

THRESHOLDS = {"psi": (0.1, 0.25), "ks": (0.1, 0.2), "js": (0.1, 0.2), "wasserstein": (0.25, 0.5)}
N_REF, N_CUR = 50_000, 20_000


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


CASES = {  # name: (reference sample, current sample)
    "normal_same": lambda r: (r.normal(size=N_REF), r.normal(size=N_CUR)),
    "normal_shift_1sd": lambda r: (r.normal(size=N_REF), r.normal(1.0, 1.0, N_CUR)),
    "normal_scale_1.5": lambda r: (r.normal(size=N_REF), r.normal(0.0, 1.5, N_CUR)),
    "lognormal_same": lambda r: (r.lognormal(size=N_REF), r.lognormal(size=N_CUR)),
    "lognormal_shift": lambda r: (r.lognormal(size=N_REF), r.lognormal(0.3, 1.0, N_CUR)),
    "poisson_same": lambda r: (r.poisson(3, N_REF).astype(float), r.poisson(3, N_CUR).astype(float)),
    "poisson_shift": lambda r: (r.poisson(3, N_REF).astype(float), r.poisson(4, N_CUR).astype(float)),
}


def exact_shares(edges: list[float], x: np.ndarray) -> np.ndarray:
    """Shares of (-inf, e0], (e0, e1], ..., (e_last, inf) by explicit comparisons (independent of searchsorted)."""
    bounds = [-np.inf, *edges, np.inf]
    counts = np.array([np.sum((x > a) & (x <= b)) for a, b in zip(bounds[:-1], bounds[1:])], dtype=float)
    return counts / counts.sum()


def direct_psi(p: np.ndarray, q: np.ndarray, eps: float = PSI_EPSILON) -> float:
    p = (p + eps) / np.sum(p + eps)
    q = (q + eps) / np.sum(q + eps)
    return float(sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q)))


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request):
    ref, cur = CASES[request.param](_rng(sorted(CASES).index(request.param)))
    profile = profile_from_values("x", ref)
    return request.param, ref, cur, profile, summary_from_values(profile, cur)


def test_psi_and_js_match_direct_computation_on_the_same_bins(case):
    _, ref, cur, profile, summary = case
    p, q = exact_shares(profile.edges, ref), exact_shares(profile.edges, cur)
    assert np.allclose(profile.shares, p, atol=1e-12)
    assert np.allclose(np.asarray(summary.bin_counts) / summary.count, q, atol=1e-12)
    assert psi(profile.shares, summary.bin_counts) == pytest.approx(direct_psi(p, q), abs=1e-9)
    assert js_distance(profile.shares, summary.bin_counts) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)


def test_ks_matches_scipy_within_quantile_resolution(case):
    _, ref, cur, profile, summary = case
    exact = stats.ks_2samp(ref, cur)
    assert ks_statistic(profile, summary) == pytest.approx(exact.statistic, abs=0.02)
    asymp = stats.ks_2samp(ref, cur, method="asymp")
    assert ks_pvalue(asymp.statistic, len(ref), len(cur)) == pytest.approx(asymp.pvalue, abs=1e-9)


def test_wasserstein_matches_scipy(case):
    _, ref, cur, profile, summary = case
    exact = stats.wasserstein_distance(ref, cur) / ref.std()
    assert wasserstein_scaled(profile, summary) == pytest.approx(exact, abs=max(0.02, 0.05 * exact))


def test_one_sd_shift_alerts_and_unchanged_sample_is_ok():
    r = _rng(7)
    profile = profile_from_values("x", r.normal(10.0, 2.0, N_REF))
    shifted = feature_drift(profile, summary_from_values(profile, r.normal(12.0, 2.0, N_CUR)))
    assert shifted["psi"] > 0.25 and shifted["ks"] > 0.2 and shifted["js"] > 0.2
    assert shifted["wasserstein"] == pytest.approx(1.0, abs=0.05)
    assert shifted["ks_pvalue"] < 1e-6
    assert all(status_of(shifted[m], *t) == "alert" for m, t in THRESHOLDS.items())
    same = feature_drift(profile, summary_from_values(profile, r.normal(10.0, 2.0, N_CUR)))
    assert all(same[m] < t[0] for m, t in THRESHOLDS.items()), same
    assert all(status_of(same[m], *t) == "ok" for m, t in THRESHOLDS.items())
    assert set(same) == set(DRIFT_METRICS)


def test_profile_shape_and_bins():
    x = _rng(1).normal(size=10_000)
    p = profile_from_values("x", x)
    assert len(p.edges) == 9 and len(p.shares) == 10 and np.all(np.diff(p.edges) > 0)
    assert sum(p.shares) == pytest.approx(1.0) and len(p.quantiles) == len(QUANTILE_PROBS) == 101
    assert p.quantiles[0] == x.min() and p.quantiles[-1] == x.max() and p.quantiles[50] == pytest.approx(np.median(x), abs=1e-3)
    assert p.mean == pytest.approx(x.mean()) and p.std == pytest.approx(x.std()) and p.count == 10_000
    # right-closed bins: a value on an edge belongs to the bin on its left
    assert bin_counts([0.0, 1.0], np.array([-1.0, 0.0, 0.5, 1.0, 1.5])).tolist() == [2, 2, 1]
    # a discrete feature gets fewer, deduplicated bins
    d = profile_from_values("d", _rng(2).poisson(1.0, 10_000).astype(float))
    assert len(d.edges) < 9 and np.all(np.diff(d.edges) > 0) and sum(d.shares) == pytest.approx(1.0)


def test_null_and_out_of_range_rates():
    r = _rng(3)
    ref = r.uniform(0, 100, 10_000)
    ref[:200] = np.nan  # 2% nulls
    ref[200:300] = 150.0  # 1% out of range
    profile = profile_from_values("cpu", ref, lo=0, hi=100)
    assert profile.null_rate == pytest.approx(0.02) and profile.out_of_range_rate == pytest.approx(0.01)
    cur = r.uniform(0, 100, 1000)
    cur[:100] = np.nan
    cur[100:105] = np.inf  # non-finite counts as null
    cur[105:155] = -1.0
    summary = summary_from_values(profile, cur, lo=0, hi=100)
    assert (summary.n_rows, summary.null_count, summary.count, summary.out_of_range_count) == (1000, 105, 895, 50)
    assert sum(summary.bin_counts) == summary.count
    drift = feature_drift(profile, summary)
    assert drift["null_rate_change"] == pytest.approx(0.105 - 0.02)
    assert drift["out_of_range_rate_change"] == pytest.approx(0.05 - 0.01)


def test_constant_feature():
    profile = profile_from_values("c", np.full(1000, 5.0))
    assert profile.edges == [5.0] and profile.shares == [1.0, 0.0] and profile.std == 0.0
    same = feature_drift(profile, summary_from_values(profile, np.full(300, 5.0)))
    assert same["psi"] == pytest.approx(0.0, abs=1e-12) and same["js"] == 0.0
    assert same["ks"] == 0.0 and same["wasserstein"] == 0.0
    moved = feature_drift(profile, summary_from_values(profile, np.full(300, 7.0)))
    assert moved["psi"] > 5 and moved["js"] == pytest.approx(1.0) and moved["ks"] == 1.0
    assert moved["wasserstein"] == pytest.approx(2.0)  # std 0: in feature units
    assert all(math.isfinite(v) for v in moved.values())


def test_all_null_and_empty_intervals_are_defined():
    profile = profile_from_values("x", _rng(4).normal(size=5000))
    nulls = summary_from_values(profile, np.full(50, np.nan))
    assert nulls.count == 0 and nulls.quantiles is None and math.isnan(nulls.mean)
    drift = feature_drift(profile, nulls)
    for m in ("psi", "ks", "ks_pvalue", "js", "wasserstein"):  # no current values: undefined
        assert math.isnan(drift[m]), m
        assert status_of(drift[m], 0.1, 0.2) == "unknown"
    assert drift["null_rate_change"] == 1.0 and drift["out_of_range_rate_change"] == 0.0
    empty = feature_drift(profile, summary_from_values(profile, np.array([])))
    assert empty["null_rate_change"] == 0.0 and math.isnan(empty["psi"])
    # an all-null reference: a defined profile, and NaN statistics against it
    blank = profile_from_values("b", np.full(10, np.nan))
    assert blank.count == 0 and blank.shares == [1.0] and blank.null_rate == 1.0
    assert math.isnan(feature_drift(blank, summary_from_values(blank, np.array([1.0])))["ks"])


def test_one_row_interval():
    ref = _rng(5).normal(size=5000)
    profile = profile_from_values("x", ref)
    summary = summary_from_values(profile, np.array([0.3]))
    assert summary.quantiles == [0.3] * 101
    drift = feature_drift(profile, summary)
    assert all(math.isfinite(v) for v in drift.values()), drift
    assert drift["ks"] == pytest.approx(stats.ks_2samp(ref, [0.3]).statistic, abs=0.02)
    assert drift["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, [0.3]) / ref.std(), abs=0.02)
    assert 0 <= drift["ks_pvalue"] <= 1


def test_json_round_trip():
    values = _rng(6).normal(size=1000)
    values[:10] = np.nan
    profile = profile_from_values("__score__", values)
    assert FeatureProfile.from_dict(json.loads(json.dumps(profile.to_dict(), allow_nan=False))) == profile
    summary = summary_from_values(profile, values[:100])
    assert CurrentSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    blank = profile_from_values("b", np.array([np.nan]))
    back = FeatureProfile.from_dict(json.loads(json.dumps(blank.to_dict(), allow_nan=False)))
    assert math.isnan(back.mean) and back.edges == [] and back.null_rate == 1.0
    empty = summary_from_values(profile, np.array([np.nan]))
    assert math.isnan(CurrentSummary.from_dict(json.loads(json.dumps(empty.to_dict(), allow_nan=False))).mean)


def test_rates_and_anomaly_rate_test():
    assert rate_change(0.1, 30, 100) == pytest.approx(0.2)
    assert rate_change(0.1, 0, 0) == 0.0
    assert anomaly_rate_test(0.01, 5, 0) == (0.0, 1.0)
    rate, p = anomaly_rate_test(0.01, 30, 1000)
    assert rate == 0.03 and p == pytest.approx(stats.binomtest(30, 1000, 0.01, alternative="greater").pvalue)
    assert p < 1e-5
    assert anomaly_rate_test(0.01, 10, 1000)[1] > 0.4  # exactly the expected rate: no evidence
    assert anomaly_rate_test(0.0, 1, 10)[1] == 0.0 and anomaly_rate_test(0.0, 0, 10)[1] == 1.0
    assert math.isnan(anomaly_rate_test(math.nan, 1, 10)[1])


def test_status_of():
    assert status_of(0.05, 0.1, 0.2) == "ok"
    assert status_of(0.1, 0.1, 0.2) == "warn"
    assert status_of(0.2, 0.1, 0.2) == "alert"
    assert status_of(math.inf, 0.1, 0.2) == "alert"
    assert status_of(math.nan, 0.1, 0.2) == "unknown"


def test_psi_rules():
    assert math.isnan(psi([0.5, 0.5], [0, 0])) and math.isnan(js_distance([0.5, 0.5], [0, 0]))
    assert psi([0.5, 0.5], [10, 10]) == pytest.approx(0.0)
    assert math.isfinite(psi([1.0, 0.0], [0, 10]))  # empty bins: finite thanks to the epsilon rule
    assert ks_pvalue(math.nan, 10, 10) != ks_pvalue(math.nan, 10, 10)  # NaN
    assert math.isnan(ks_pvalue(0.5, 0, 10))
    with pytest.raises(ValueError):
        psi([0.5, 0.5], [1, 2, 3])  # a bin-count mismatch is a bug, not a data case
