"""A stuck metric: the last few points hold one value, at a level the metric is not pinned at in training.

A forecaster is not surprised by a stuck sensor (its next value is its last one), so `tcn` reports flatness as
evidence of its own. What "flat" means is fitted per feature: the usual range over the points read (for the graded
`range` mode) and the levels a feature sits at again and again in training (a floor, a cap, an idle value), where
being exactly flat is ordinary.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

FLAT_LEVELS = 128  # flat levels kept per feature
PINNED_REPEATS = 3  # an exact value seen this often in training is a level the feature gets pinned at
FLAT_TOLERANCE = 1e-6  # normalised units: "exactly" flat, and "at" a known flat level
FLAT_FLOOR = 1e-3  # a range is read down to this share of the usual one: log(1 / FLAT_FLOOR) is "exactly flat"


def sliding_ranges(x: np.ndarray, k: int, context: int) -> np.ndarray:
    """Each feature's range over the k points ending at each position from context - 1 on, of sequences x (n,
    L, d): (n (L - context + 1), d), as np.ptp over a sliding window gives it, as k shifted maxima and minima
    (ptp over a strided view is ~5x slower)."""
    n, length, d = x.shape
    hi = x[:, context - k: length - k + 1].copy()
    lo = hi.copy()
    for j in range(1, k):
        shifted = x[:, context - k + j: length - k + 1 + j]
        np.maximum(hi, shifted, out=hi)
        np.minimum(lo, shifted, out=lo)
    return (hi - lo).reshape(-1, d)


def usual_range(last_k: np.ndarray) -> np.ndarray:
    """(m, k, d) runs of k training points -> each feature's median range over them (d,), at least 1e-3."""
    d = last_k.shape[2]
    ref = np.median(np.ptp(last_k, axis=1), axis=0) if len(last_k) else np.ones(d)
    return np.maximum(np.nan_to_num(ref, nan=1.0), 1e-3)


def pinned_levels(values: np.ndarray) -> np.ndarray:
    """(N, d) training rows -> (d, FLAT_LEVELS) float32: the exact values each feature takes at least
    PINNED_REPEATS times, most frequent first, NaN-padded."""
    d = values.shape[1]
    table = np.full((d, FLAT_LEVELS), np.nan, dtype=np.float32)
    for j in range(d):
        levels, counts = np.unique(np.asarray(values[:, j], dtype=np.float32), return_counts=True)
        pinned = counts >= PINNED_REPEATS
        top = levels[pinned][np.argsort(-counts[pinned], kind="stable")[:FLAT_LEVELS]]
        table[j, :len(top)] = top
    return table


def flatline_evidence(recent_range: np.ndarray, rows: np.ndarray, ref: np.ndarray, levels: np.ndarray,
                      mode: Literal["exact", "range"]) -> np.ndarray:
    """Per point and feature (n, d): "exact", log(1 / FLAT_FLOOR) where the range over the points read is 0, else
    0; "range", log(usual range / range), graded down to FLAT_FLOOR of the usual one. Either way a feature exactly
    flat at one of its pinned `levels` (d, FLAT_LEVELS) has none: rows (n, d) are the scored points' values."""
    flat = recent_range <= FLAT_TOLERANCE
    if mode == "exact":
        e = np.where(flat, -np.log(FLAT_FLOOR), 0.0)
    else:
        e = np.log(ref / np.maximum(recent_range.astype(np.float64), FLAT_FLOOR * ref))
    i, j = np.nonzero(flat)
    pinned = (np.abs(rows[i, j][:, None] - levels[j]) <= FLAT_TOLERANCE).any(axis=1)
    e[i[pinned], j[pinned]] = np.minimum(e[i[pinned], j[pinned]], 0.0)
    return e
