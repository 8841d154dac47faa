"""NAB scores of a product's alerts: at the production threshold, and at the threshold NAB's own method would
choose (the best corpus total per profile), on series cut to the evaluated interval.

A series is an entity's rows in time order (every row of the source, scored or not), its raw scores (NaN
where not scored: rows a model trained on, or quarantined ones) and its anomaly windows. NAB's probationary
period (15 % of the whole series, at most 750 rows) is taken from the whole series and cut like the rest, so
that evaluating the whole range is exactly NAB, and a shorter interval scores only what it holds.
A detection is the first point of an alert event (monitoring.events: one alert per incident), which is what
a user of the product is shown; NAB counts every further detection outside a window as a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lakewatch.monitoring.events import EventRules, event_starts
from lakewatch.monitoring.nab_scoring import (
    CostProfile,
    baseline_scores,
    normalized_score,
    point_weights,
    probationary_length,
)

CANDIDATES = 300  # thresholds tried per profile: quantiles of the scored values, densest in the tail


@dataclass(frozen=True)
class NabSeries:
    """One entity cut to an interval: timestamps (µs, sorted), raw scores, windows as inclusive row positions,
    how many of its first rows are probationary, and its spacing (for the event rules)."""

    name: str
    ts_us: np.ndarray
    score: np.ndarray
    windows: list[tuple[int, int]]
    probation: int
    spacing_s: float


def cut_series(name: str, ts_us: np.ndarray, score: np.ndarray, windows_us: list[tuple[int, int]],
               start_us: int, end_us: int, spacing_s: float) -> NabSeries:
    """An entity's whole series (sorted) cut to [start_us, end_us), its windows clipped to what remains."""
    probation_end = ts_us[min(probationary_length(len(ts_us)), len(ts_us) - 1)] if len(ts_us) else 0
    keep = (ts_us >= start_us) & (ts_us < end_us)
    ts, sc = ts_us[keep], score[keep]
    rows = []
    for a_us, b_us in sorted(windows_us):
        a, b = int(np.searchsorted(ts, a_us, side="left")), int(np.searchsorted(ts, b_us, side="right")) - 1
        if a <= b:
            rows.append((a, b))
    return NabSeries(name, ts, sc, rows, int(np.sum(ts < probation_end)), spacing_s)


@dataclass(frozen=True)
class _Prepared:
    series: NabSeries
    weights: np.ndarray
    window_id: np.ndarray
    scorable: np.ndarray  # ids of windows with a row after probation


def _prepare(corpus: list[NabSeries], profile: CostProfile) -> tuple[list[_Prepared], float, float]:
    prepared, null, perfect = [], 0.0, 0.0
    for s in corpus:
        w, wid = point_weights(len(s.ts_us), s.windows, profile)
        after = wid[s.probation:]
        prepared.append(_Prepared(s, w, wid, np.unique(after[after >= 0])))
        n0, p0 = baseline_scores(len(s.ts_us), s.windows, profile, s.probation)
        null, perfect = null + n0, perfect + p0
    return prepared, null, perfect


def _raw(p: _Prepared, detected: np.ndarray, profile: CostProfile) -> float:
    """NAB's raw score of one series: detections outside windows add their weight (negative), each scorable
    window its earliest detection's weight, or -fn when it has none; probationary rows count for nothing."""
    d = detected.copy()
    d[: p.series.probation] = False
    inside = p.window_id >= 0
    total = float(np.sum(p.weights[d & ~inside]))
    for k in p.scorable:
        hit = d & (p.window_id == k)
        total += max(-profile.fn, float(p.weights[hit].max())) if hit.any() else -profile.fn
    return total


def detections(s: NabSeries, threshold: float, rules: EventRules) -> np.ndarray:
    flags = np.nan_to_num(s.score, nan=-np.inf) >= threshold
    return event_starts(s.ts_us, flags, rules, s.spacing_s)


def corpus_score(corpus: list[NabSeries], profile: CostProfile, threshold: float, rules: EventRules) -> float:
    """NAB's normalised score (null 0, perfect 100) of the corpus when alerts fire at `threshold`."""
    prepared, null, perfect = _prepare(corpus, profile)
    raw = sum(_raw(p, detections(p.series, threshold, rules), profile) for p in prepared)
    return normalized_score(raw, null, perfect)


def candidate_thresholds(corpus: list[NabSeries]) -> np.ndarray:
    """Quantiles of every scored value from the median up, densest near the top (log-spaced tail shares)."""
    values = np.concatenate([s.score[~np.isnan(s.score)] for s in corpus]) if corpus else np.zeros(0)
    if values.size == 0:
        return np.zeros(0)
    tail = np.logspace(np.log10(0.5), np.log10(0.5 / max(values.size, 2)), CANDIDATES)
    return np.unique(np.quantile(values, 1.0 - tail))


def nab_scores(corpus: list[NabSeries], profiles: dict[str, CostProfile], threshold: float,
               rules: EventRules) -> dict[str, float]:
    """Per profile: nab_<profile> at the production threshold, and nab_<profile>_optimized with its threshold
    (the best of the candidate thresholds, as NAB's optimiser would choose for a detector)."""
    out: dict[str, float] = {}
    candidates = candidate_thresholds(corpus)
    detected = {t: [detections(s, t, rules) for s in corpus] for t in [threshold, *candidates]}
    for name, profile in profiles.items():
        prepared, null, perfect = _prepare(corpus, profile)
        total = lambda t: normalized_score(  # noqa: E731
            sum(_raw(p, d, profile) for p, d in zip(prepared, detected[t])), null, perfect)
        out[f"nab_{name}"] = total(threshold)
        best = max(((total(t), t) for t in candidates), default=(float("nan"), float("nan")))
        out[f"nab_{name}_optimized"], out[f"nab_{name}_optimized_threshold"] = best
    return out
