"""Numenta Anomaly Benchmark (NAB) scoring as plain numpy/pandas functions.

A re-implementation of NAB's rules (numenta/NAB, ``nab/sweeper.py``, ``scorer.py``,
``optimizer.py``, ``runner.normalize``), written from their description so that a
detector scored here gets the same per-file scores, counts and normalised totals as
NAB itself. The rules, per series of ``n`` rows:

- the first ``probationary_length(n)`` rows are ignored entirely (no score, no count);
- every row gets a weight ``S(t)``: inside a window, ``tp * s(p) / s(-1)`` with
  ``p = -(right - i + 1) / width`` (1.0 at the window's first row, falling to ~0 at its
  end); outside, ``fp * s(p)`` with ``p = (i - prev_right) / (prev_width - 1)`` after a
  window (``s(p) = -1`` for ``p > 3``) and ``-fp`` before the first window, where
  ``s(p) = 2 * sigmoid(-5 p) - 1``;
- raw score = sum of ``S(t)`` over detected rows outside windows + for each window
  holding a scorable row, the best ``S(t)`` of its detected rows (its earliest
  detection), or ``-fn`` when none was detected;
- counts are of rows, not windows: TP/FN = detected/undetected rows inside windows,
  FP/TN = detected/undetected rows outside them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROBATION_PERCENT = 0.15
PROBATION_CAP_ROWS = 5000
NO_DETECTION_THRESHOLD = 1.1  # NAB's first sweep threshold: above every score in [0, 1]

Windows = Sequence[tuple[int, int]]


@dataclass(frozen=True)
class CostProfile:
    """Weights of one NAB application profile (``tn`` is carried but never used by NAB)."""

    name: str
    tp: float
    fp: float
    fn: float
    tn: float = 1.0


@dataclass(frozen=True)
class SeriesScore:
    """One series' raw NAB score and its row counts (``total`` excludes probation)."""

    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


@dataclass(frozen=True)
class CorpusScore:
    """A profile's result over a corpus: per-file rows, raw/null/perfect totals, 0..100 score."""

    profile: str
    threshold: float
    per_file: pd.DataFrame
    raw: float
    null: float
    perfect: float
    normalized: float


def load_profiles(path: str | Path) -> dict[str, CostProfile]:
    """Read NAB's ``profiles.json`` (``{name: {"CostMatrix": {"tpWeight": ...}}}``)."""
    raw = json.loads(Path(path).read_text())
    return {
        name: CostProfile(name, float(m["tpWeight"]), float(m["fpWeight"]),
                          float(m["fnWeight"]), float(m.get("tnWeight", 1.0)))
        for name, m in ((n, p["CostMatrix"]) for n, p in raw.items())
    }


def probationary_length(n_rows: int, percent: float = PROBATION_PERCENT,
                        cap_rows: int = PROBATION_CAP_ROWS) -> int:
    """Rows at the start of a series that are not scored: ``floor(15% of n)``, at most 750.

    NAB compares ``row >= min(floor(p * n), p * cap)``; the ceiling keeps that exact
    for caps that are not whole numbers of rows.
    """
    return int(min(math.floor(percent * n_rows), math.ceil(percent * cap_rows)))


def window_positions(timestamps: Sequence[Any], windows: Sequence[tuple[Any, Any]]) -> list[tuple[int, int]]:
    """Map (start, end) timestamps to inclusive row positions; both ends must be rows of the series.

    A repeated timestamp (two NAB files repeat an hour at a clock change) maps to its
    first row, as NAB's ``list.index`` lookup does.
    """
    if len(windows) == 0:
        return []
    index = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps)))
    first = ~index.duplicated()
    flat = pd.to_datetime(pd.Series([t for w in windows for t in w]))
    found = index[first].get_indexer(flat)
    if (found < 0).any():
        missing = flat[found < 0].iloc[0]
        raise ValueError(f"window timestamp {missing} is not a timestamp of the series")
    pos = np.flatnonzero(first)[found]
    return [(int(pos[2 * k]), int(pos[2 * k + 1])) for k in range(len(windows))]


def _scaled_sigmoid(p: np.ndarray) -> np.ndarray:
    """NAB's ``2 * sigmoid(-5 p) - 1``, forced to -1 beyond three window lengths."""
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * p)) - 1.0
    return np.where(p > 3.0, -1.0, val)


def point_weights(n_rows: int, windows: Windows, profile: CostProfile) -> tuple[np.ndarray, np.ndarray]:
    """Per-row NAB weight ``S(t)`` (what a detection there would be worth) and window id (-1 outside).

    Windows are inclusive row positions, sorted and disjoint. Rows after a one-row
    window are scored as far from it (-fp) where NAB would divide by zero.
    """
    idx = np.arange(n_rows)
    window_id = np.full(n_rows, -1, dtype=np.int64)
    weights = np.full(n_rows, -profile.fp, dtype=float)  # before any window: -1 * fp
    max_tp = 2.0 / (1.0 + math.exp(-5.0)) - 1.0
    prev_end = -1
    for k, (left, right) in enumerate(windows):
        if not (prev_end < left <= right < n_rows):
            raise ValueError(f"windows must be sorted, disjoint and inside the series: {windows!r}")
        width = right - left + 1
        inside = slice(left, right + 1)
        window_id[inside] = k
        weights[inside] = _scaled_sigmoid(-(right - idx[inside] + 1) / width) * profile.tp / max_tp
        after_end = windows[k + 1][0] if k + 1 < len(windows) else n_rows
        gap = idx[right + 1:after_end]
        with np.errstate(divide="ignore"):
            p = (gap - right) / float(width - 1) if width > 1 else np.full(gap.size, np.inf)
        weights[right + 1:after_end] = _scaled_sigmoid(p) * profile.fp
        prev_end = right
    return weights, window_id


def _scorable_windows(window_id: np.ndarray, probation: int) -> np.ndarray:
    """Ids of the windows with at least one row after the probationary period."""
    return np.unique(window_id[probation:][window_id[probation:] >= 0])


def score_series(detections: np.ndarray, windows: Sequence[tuple[Any, Any]], profile: CostProfile,
                 probation: int | None = None, timestamps: Sequence[Any] | None = None) -> SeriesScore:
    """Raw NAB score and TP/TN/FP/FN of one series given its boolean detections (score >= threshold).

    ``windows`` are row positions, or timestamps when ``timestamps`` is given.
    ``probation`` defaults to :func:`probationary_length` of the series.
    """
    det = np.asarray(detections, dtype=bool)
    n = det.size
    pos = window_positions(timestamps, windows) if timestamps is not None else list(windows)
    probation = probationary_length(n) if probation is None else probation
    weights, window_id = point_weights(n, pos, profile)
    w, wid, d = weights[probation:], window_id[probation:], det[probation:]
    inside = wid >= 0
    score = float(np.sum(w[d & ~inside]))
    for k in _scorable_windows(window_id, probation):
        hit = d & (wid == k)
        score += max(-profile.fn, float(w[hit].max())) if hit.any() else -profile.fn
    tp, fp = int(np.sum(d & inside)), int(np.sum(d & ~inside))
    return SeriesScore(score, tp, int(np.sum(~inside)) - fp, fp, int(np.sum(inside)) - tp, int(d.size))


def baseline_scores(n_rows: int, windows: Windows, profile: CostProfile,
                    probation: int | None = None) -> tuple[float, float]:
    """(null, perfect) raw scores of one series, the ends of NAB's 0..100 scale.

    The null detector detects nothing: ``-fn`` per window with a scorable row. NAB's
    perfect total is ``tp`` per labelled window (all windows, probation or not).
    """
    probation = probationary_length(n_rows) if probation is None else probation
    _, window_id = point_weights(n_rows, windows, profile)
    return -profile.fn * len(_scorable_windows(window_id, probation)), profile.tp * len(windows)


def normalized_score(raw: float, null: float, perfect: float) -> float:
    """NAB's final score: ``100 * (raw - null) / (perfect - null)`` over totals summed across files."""
    return 100.0 * (raw - null) / (perfect - null)


def sweep_thresholds(series: Sequence[tuple[np.ndarray, Windows]], profile: CostProfile,
                     probation_percent: float = PROBATION_PERCENT) -> tuple[np.ndarray, np.ndarray]:
    """Corpus raw score at every candidate threshold of ``(scores, windows)`` series, highest first.

    Exact sweep, as NAB's optimiser: the scorable rows of all series are sorted by score
    descending once; lowering the threshold past a row adds its weight when it lies
    outside windows, or raises its window's best weight (which starts at -fn). Each
    distinct value ``t`` stands for "detect scores >= t"; the first candidate (1.1, as
    NAB) detects nothing. O(n log n) in all rows; NaN scores never detect.
    """
    scores, weights, groups, base, offset = [], [], [], 0.0, 0
    for values, windows in series:
        values = np.asarray(values, dtype=float)
        probation = probationary_length(values.size, probation_percent)
        w, wid = point_weights(values.size, windows, profile)
        keep = ~np.isnan(values[probation:])
        wid = wid[probation:][keep]
        scores.append(values[probation:][keep])
        weights.append(w[probation:][keep])
        groups.append(np.where(wid >= 0, wid + offset, -1))
        base -= profile.fn * len(np.unique(wid[wid >= 0]))
        offset += len(windows)
    s, w, g = (np.concatenate(a) if a else np.empty(0) for a in (scores, weights, groups))
    order = np.argsort(-s, kind="stable")
    s, w, g = s[order], w[order], g[order].astype(np.int64)
    delta = np.where(g < 0, w, 0.0)
    ins = g >= 0
    if ins.any():
        frame = pd.DataFrame({"g": g[ins], "w": np.maximum(w[ins], -profile.fn)})
        best = frame.groupby("g")["w"].cummax().to_numpy()
        before = pd.Series(best).groupby(frame["g"].to_numpy()).shift(1).fillna(-profile.fn).to_numpy()
        delta[ins] = best - before
    totals = base + np.cumsum(delta)
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if s.size else np.empty(0, dtype=int)
    top = NO_DETECTION_THRESHOLD if not s.size or s[0] < NO_DETECTION_THRESHOLD else np.nextafter(s[0], np.inf)
    return np.r_[top, s[ends]], np.r_[base, totals[ends]]


def optimize_threshold(series: Sequence[tuple[np.ndarray, Windows]], profile: CostProfile,
                       probation_percent: float = PROBATION_PERCENT) -> tuple[float, float]:
    """(threshold, corpus raw score) that maximises the summed raw score; ties go to the higher threshold, as in NAB."""
    thresholds, totals = sweep_thresholds(series, profile, probation_percent)
    best = int(np.argmax(totals))
    return float(thresholds[best]), float(totals[best])


CorpusFiles = Mapping[str, tuple[Sequence[Any], np.ndarray, Sequence[tuple[Any, Any]]]]


def score_corpus(files: CorpusFiles, profiles: Mapping[str, CostProfile],
                 threshold: float | Mapping[str, float] | None = None,
                 probation_percent: float = PROBATION_PERCENT) -> dict[str, CorpusScore]:
    """Score ``{name: (timestamps, anomaly_scores, windows as timestamps)}`` under each profile.

    With ``timestamps`` None, that file's windows are inclusive row positions.

    ``threshold``: one value for all profiles, one per profile, or None to optimise it
    per profile over these files. Normalisation uses null/perfect totals of these files.
    """
    prepared = {}
    for name, (timestamps, values, windows) in files.items():
        values = np.asarray(values, dtype=float)
        pos = window_positions(timestamps, windows) if timestamps is not None else list(windows)
        prepared[name] = (values, pos, probationary_length(values.size, probation_percent))
    results: dict[str, CorpusScore] = {}
    for pname, profile in profiles.items():
        if threshold is None:
            thr, _ = optimize_threshold([(v, p) for v, p, _ in prepared.values()], profile, probation_percent)
        else:
            thr = float(threshold[pname] if isinstance(threshold, Mapping) else threshold)
        rows, null, perfect = [], 0.0, 0.0
        for name, (values, pos, probation) in prepared.items():
            res = score_series(values >= thr, pos, profile, probation)
            rows.append({"file": name, "threshold": thr, "score": res.score, "tp": res.tp, "tn": res.tn,
                         "fp": res.fp, "fn": res.fn, "total": res.total})
            n0, p0 = baseline_scores(values.size, pos, profile, probation)
            null, perfect = null + n0, perfect + p0
        per_file = pd.DataFrame(rows, columns=["file", "threshold", "score", "tp", "tn", "fp", "fn", "total"])
        raw = float(per_file["score"].sum())
        results[pname] = CorpusScore(pname, thr, per_file, raw, null, perfect, normalized_score(raw, null, perfect))
    return results
