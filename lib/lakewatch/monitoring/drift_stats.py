"""Drift statistics of one interval against a model's reference profile: pure numpy/scipy, no Spark.

The reference side is a `FeatureProfile` (computed over the training data, stored as JSON in the model
package); the current side is a `CurrentSummary` (what one Spark aggregation over the interval yields:
counts, counts in the reference bins, 101 quantiles, mean). Every statistic works on these summaries only,
so a scoring job never has to hold raw values, and each is defined for the edge cases (constant feature,
empty interval, one row): it returns a float and never raises on data; NaN means "undefined", and only
where stated (no current values, or an empty reference).

Conventions shared with the Spark side:
- null: SQL NULL, NaN or +-inf (the numpy helpers treat every non-finite value as null);
- bins: edges e0 < e1 < ... give bins (-inf, e0], (e0, e1], ..., (e_last, +inf); a value's bin index is the
  number of edges strictly below it;
- quantiles: the values at QUANTILE_PROBS (0, 0.01, ..., 1), actual observed values (inverse empirical CDF,
  like Spark's percentile_approx), with the min and max at the ends;
- rates (null, out-of-range) are per row: null_count / n_rows, out_of_range_count / n_rows; out-of-range
  values are non-null and stay in the distribution (bins, quantiles, mean);
- std is the population standard deviation (Spark: stddev_pop).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

QUANTILE_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))
PSI_EPSILON = 1e-4
DRIFT_METRICS = ("psi", "ks", "ks_pvalue", "js", "wasserstein", "null_rate_change", "out_of_range_rate_change")


def _json_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class FeatureProfile:
    """The reference distribution of one feature (or of the score, as feature `__score__`)."""

    name: str
    edges: list[float]  # inner bin edges, strictly increasing; len(edges) + 1 bins
    shares: list[float]  # reference share of each bin, sums to 1
    quantiles: list[float]  # reference values at QUANTILE_PROBS; [] when the reference has no values
    mean: float
    std: float
    count: int  # non-null reference values
    null_rate: float
    out_of_range_rate: float

    def to_dict(self) -> dict:
        """JSON-safe: NaN/inf become None (strict JSON has no NaN)."""
        d = asdict(self)
        for key in ("mean", "std", "null_rate", "out_of_range_rate"):
            d[key] = _json_float(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureProfile":
        return cls(
            name=str(data["name"]),
            edges=[float(e) for e in data["edges"]],
            shares=[float(s) for s in data["shares"]],
            quantiles=[float(q) for q in data["quantiles"]],
            mean=_float(data["mean"]),
            std=_float(data["std"]),
            count=int(data["count"]),
            null_rate=_float(data["null_rate"]),
            out_of_range_rate=_float(data["out_of_range_rate"]),
        )


@dataclass(frozen=True)
class CurrentSummary:
    """One interval of one feature, summarised against a reference profile's bins."""

    count: int  # non-null values
    n_rows: int  # all rows, nulls included
    null_count: int
    out_of_range_count: int
    bin_counts: list[int]  # counts in the reference bins (len(profile.edges) + 1)
    quantiles: list[float] | None  # values at QUANTILE_PROBS; None when count == 0
    mean: float  # NaN when count == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": _json_float(self.mean)}

    @classmethod
    def from_dict(cls, data: dict) -> "CurrentSummary":
        q = data.get("quantiles")
        return cls(int(data["count"]), int(data["n_rows"]), int(data["null_count"]), int(data["out_of_range_count"]),
                   [int(c) for c in data["bin_counts"]], None if q is None else [float(x) for x in q], _float(data["mean"]))


def split_values(values: np.ndarray, lo: float | None, hi: float | None) -> tuple[np.ndarray, int, int]:
    """(finite values, null count, out-of-range count) of a raw array."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    oor = np.zeros(len(finite), dtype=bool)
    if lo is not None:
        oor |= finite < lo
    if hi is not None:
        oor |= finite > hi
    return finite, len(v) - len(finite), int(oor.sum())


def bin_counts(edges: list[float], values: np.ndarray) -> np.ndarray:
    """Counts of finite values in the bins (-inf, e0], (e0, e1], ..., (e_last, +inf)."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")  # = number of edges < value
    return np.bincount(idx, minlength=len(edges) + 1)


def quantiles_of(finite: np.ndarray) -> list[float]:
    return np.quantile(finite, QUANTILE_PROBS, method="inverted_cdf").tolist()


def profile_from_values(name: str, values: np.ndarray, n_bins: int = 10,
                        lo: float | None = None, hi: float | None = None) -> FeatureProfile:
    """Reference profile of a numpy array (non-finite = null): n_bins quantile bins (fewer when quantiles tie).

    The inner edges are the values at probabilities k/n_bins, k = 1..n_bins-1, deduplicated, so a discrete
    or constant feature gets fewer, wider bins rather than empty duplicates.
    """
    finite, nulls, oor = split_values(values, lo, hi)
    n_rows = len(finite) + nulls
    if len(finite) == 0:
        return FeatureProfile(name, [], [1.0], [], math.nan, math.nan, 0,
                              nulls / n_rows if n_rows else math.nan, 0.0 if n_rows else math.nan)
    probs = [k / n_bins for k in range(1, n_bins)]
    edges = np.unique(np.quantile(finite, probs, method="inverted_cdf")).tolist()
    shares = (bin_counts(edges, finite) / len(finite)).tolist()
    return FeatureProfile(name, edges, shares, quantiles_of(finite), float(finite.mean()), float(finite.std()),
                          len(finite), nulls / n_rows, oor / n_rows)


def summary_from_values(profile: FeatureProfile, values: np.ndarray,
                        lo: float | None = None, hi: float | None = None) -> CurrentSummary:
    """What the Spark aggregation computes for an interval, from a numpy array (tests; the driver)."""
    finite, nulls, oor = split_values(values, lo, hi)
    empty = len(finite) == 0
    return CurrentSummary(len(finite), len(finite) + nulls, nulls, oor, bin_counts(profile.edges, finite).tolist(),
                          None if empty else quantiles_of(finite), math.nan if empty else float(finite.mean()))


def _shares(ref_shares: list[float], cur_counts: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    p = np.asarray(ref_shares, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    if p.shape != c.shape:
        raise ValueError(f"{len(c)} current bins for {len(p)} reference bins")  # a bug, not a data case
    if c.sum() <= 0 or p.sum() <= 0:
        return None
    return p / p.sum(), c / c.sum()


def psi(ref_shares: list[float], cur_counts: list[int], eps: float = PSI_EPSILON) -> float:
    """Population Stability Index sum((q - p) * ln(q / p)) over the reference bins.

    Empty-bin rule: eps (1e-4) is added to every share on both sides, then each side is renormalised to
    sum 1, so an empty bin contributes a large but finite term. NaN when the interval has no values.
    """
    s = _shares(ref_shares, cur_counts)
    if s is None:
        return math.nan
    p, q = ((x + eps) / (x + eps).sum() for x in s)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref_shares: list[float], cur_counts: list[int]) -> float:
    """Jensen-Shannon distance (sqrt of the divergence, base 2, so in [0, 1]) between the binned shares.

    No smoothing needed: 0 * log 0 = 0. NaN when the interval has no values.
    """
    s = _shares(ref_shares, cur_counts)
    if s is None:
        return math.nan
    p, q = s
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(math.sqrt(min(1.0, max(0.0, (kl(p) + kl(q)) / 2))))


def _cdf(q: np.ndarray, x: np.ndarray, right: bool) -> np.ndarray:
    """CDF from a quantile function, linear between quantiles: F(x) (right=True) or F(x-) (right=False).

    Tied quantiles (a value carrying mass) make a jump, whose two sides are the two limits.
    """
    probs = np.asarray(QUANTILE_PROBS)
    i = np.searchsorted(q, x, side="right" if right else "left")  # number of quantiles <= x (or < x)
    inner = (i > 0) & (i < len(q))
    j = np.clip(i, 1, len(q) - 1)
    lo_q, hi_q = q[j - 1], q[j]
    width = np.where(hi_q > lo_q, hi_q - lo_q, 1.0)
    frac = np.clip((x - lo_q) / width, 0.0, 1.0)
    return np.where(inner, probs[j - 1] + (probs[j] - probs[j - 1]) * frac, np.where(i == 0, 0.0, 1.0))


def _qs(profile: FeatureProfile, summary: CurrentSummary) -> tuple[np.ndarray, np.ndarray] | None:
    if summary.count == 0 or not summary.quantiles or len(profile.quantiles) != len(QUANTILE_PROBS):
        return None
    return np.asarray(profile.quantiles, dtype=np.float64), np.asarray(summary.quantiles, dtype=np.float64)


def ks_statistic(profile: FeatureProfile, summary: CurrentSummary) -> float:
    """Kolmogorov-Smirnov D = sup |F_ref - F_cur|, from the two 101-point quantile functions.

    Both CDFs are evaluated (both one-sided limits) on the union of the two quantile sets; between those
    points both are linear, so the sup is attained there. Error vs the exact two-sample D: at most one
    quantile step (0.01) per side. NaN when the interval (or the reference) has no values.
    """
    qs = _qs(profile, summary)
    if qs is None:
        return math.nan
    ref, cur = qs
    grid = np.union1d(ref, cur)
    d = max(float(np.max(np.abs(_cdf(ref, grid, r) - _cdf(cur, grid, r)))) for r in (True, False))
    return min(1.0, d)


def ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    """Two-sample KS p-value, asymptotic like scipy's ks_2samp(method='asymp'): kstwo.sf(d, round(n*m/(n+m))).

    With millions of rows any real shift has p ~ 0, so statuses use D itself; the p-value is informative.
    NaN when d is NaN or either side is empty.
    """
    if not math.isfinite(d) or n_ref <= 0 or n_cur <= 0:
        return math.nan
    en = n_ref * n_cur / (n_ref + n_cur)
    return float(np.clip(stats.kstwo.sf(min(max(d, 0.0), 1.0), max(1, round(en))), 0.0, 1.0))


def wasserstein_scaled(profile: FeatureProfile, summary: CurrentSummary) -> float:
    """Wasserstein-1 = integral over p in [0,1] of |Q_ref(p) - Q_cur(p)|, trapezoid on the 101 quantiles,
    in units of the reference std so that thresholds mean the same for every feature.

    The end intervals [0, 0.01] and [0.99, 1] take the difference at p = 0.01 / 0.99 instead of the
    min / max: an extreme is one row, and on heavy tails its weight of 0.005 alone made errors of 0.1-1 std
    between two draws of one distribution (lognormal, t3); this way the error stays ~0.01 std (a heavy
    tail beyond the 99th percentile is slightly under-counted). A constant reference (std 0) divides by
    1, i.e. the distance stays in feature units. NaN when either side has no values.
    """
    qs = _qs(profile, summary)
    if qs is None:
        return math.nan
    ref, cur = qs
    diff = np.abs(ref - cur)
    diff[0], diff[-1] = diff[1], diff[-2]
    w = float(np.trapezoid(diff, np.asarray(QUANTILE_PROBS)))
    scale = profile.std if math.isfinite(profile.std) and profile.std > 0 else 1.0
    return w / scale


def rate_change(ref_rate: float, cur_count: int, n: int) -> float:
    """cur_count / n - ref_rate (positive = more of it now); 0.0 for an empty interval (nothing observed)."""
    if n <= 0:
        return 0.0
    return float(cur_count / n - ref_rate)


def anomaly_rate_test(expected_rate: float, n_anomalous: int, n: int) -> tuple[float, float]:
    """(observed rate, one-sided exact binomial p-value of seeing >= n_anomalous at expected_rate).

    A small p-value means more anomalies than the calibrated false-alarm rate explains. n = 0 gives
    (0.0, 1.0); a NaN expected rate gives a NaN p-value.
    """
    if n <= 0:
        return 0.0, 1.0
    observed = n_anomalous / n
    if not math.isfinite(expected_rate):
        return observed, math.nan
    k = int(min(max(n_anomalous, 0), n))
    p = min(max(float(expected_rate), 0.0), 1.0)
    return observed, float(stats.binomtest(k, n, p, alternative="greater").pvalue)


def status_of(value: float, warn: float, alert: float) -> str:
    """'alert' if value >= alert, 'warn' if value >= warn, else 'ok'; 'unknown' for NaN.

    NaN means the statistic is undefined (e.g. no rows in the interval): calling that 'ok' would hide an
    empty feed, calling it 'warn' would raise a drift alarm that is not drift; 'unknown' says what it is.
    """
    if value is None or math.isnan(value):
        return "unknown"
    if value >= alert:
        return "alert"
    if value >= warn:
        return "warn"
    return "ok"


def feature_drift(profile: FeatureProfile, summary: CurrentSummary) -> dict[str, float]:
    """All drift metrics of one feature for one interval, keyed as in DRIFT_METRICS."""
    d = ks_statistic(profile, summary)
    return {
        "psi": psi(profile.shares, summary.bin_counts),
        "ks": d,
        "ks_pvalue": ks_pvalue(d, profile.count, summary.count),
        "js": js_distance(profile.shares, summary.bin_counts),
        "wasserstein": wasserstein_scaled(profile, summary),
        "null_rate_change": rate_change(profile.null_rate, summary.null_count, summary.n_rows),
        "out_of_range_rate_change": rate_change(profile.out_of_range_rate, summary.out_of_range_count, summary.n_rows),
    }
