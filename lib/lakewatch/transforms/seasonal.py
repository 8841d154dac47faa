"""A seasonal profile per entity and feature: what each time of day usually looks like, and how far values
usually stray from it.

Fitted at training (`lakewatch.transforms.fitting.seasonal_stats`: the median of each time-of-day bin, then the
median absolute deviation of every row from its bin's median) and kept in the package's entity file. The plan
appends, for a model that asks (`Detector.seasonal_bins`), each feature's residual from its profile in units
of that spread: a value ordinary for the day but not for the hour shows there. A bin training never saw uses
the entity's median; an entity training never saw has no profile, and residuals of zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lakewatch.transforms.entities import Located

US_PER_DAY = 86_400_000_000


def bin_of(ts_us: np.ndarray, bins: int) -> np.ndarray:
    """Each timestamp's time-of-day bin (UTC), 0..bins-1."""
    return ((np.asarray(ts_us, dtype=np.int64) % US_PER_DAY) * bins // US_PER_DAY).astype(np.int64)


@dataclass(frozen=True)
class SeasonalProfile:
    """Per entity (aligned with the package's EntityIndex) and feature: bin medians and the spread around them."""

    features: list[str]
    bins: int
    median: np.ndarray  # (m, bins, d), raw units
    scale: np.ndarray  # (m, d), raw units, > 0

    def residuals(self, x: np.ndarray, ts_us: np.ndarray, located: Located) -> np.ndarray:
        """(n, d) float32: (x - the bin's median) / the entity's spread; zero for entities without a profile."""
        if len(self.median) == 0:
            return np.zeros((len(x), len(self.features)), dtype=np.float32)
        return self._standardized(x, self.median[located.pos, bin_of(ts_us, self.bins)], located)

    def _standardized(self, x: np.ndarray, med: np.ndarray, located: Located) -> np.ndarray:
        """(x - med) / the entity's spread, (n, d) float32; zero for entities without a profile."""
        r = (np.asarray(x, dtype=np.float64) - med) / self.scale[located.pos]
        r[located.unseen] = 0.0
        return np.clip(r, -1e6, 1e6).astype(np.float32)

    def columns(self) -> dict[str, np.ndarray]:
        """Its columns for the entity file."""
        out: dict[str, np.ndarray] = {}
        for j, f in enumerate(self.features):
            for k in range(self.bins):
                out[f"season:{f}:{k}"] = self.median[:, k, j]
            out[f"season_scale:{f}"] = self.scale[:, j]
        return out

    @classmethod
    def from_table(cls, features: list[str], bins: int, table: pa.Table) -> "SeasonalProfile":
        m, d = len(table), len(features)
        median = np.zeros((m, bins, d))
        scale = np.ones((m, d))
        for j, f in enumerate(features):
            for k in range(bins):
                median[:, k, j] = table.column(f"season:{f}:{k}").to_numpy()
            scale[:, j] = table.column(f"season_scale:{f}").to_numpy()
        return cls(features, bins, median, scale)


@dataclass(frozen=True)
class CrossFittedProfile(SeasonalProfile):
    """The profile as the model's fit reads it: each row's residual from the medians of the *other* folds of its
    entity's training span (K contiguous folds of equal time, `fold_of`), with the full profile's spread; where
    the other folds have no rows in a bin (a span shorter than a day, a sparse bin), the full profile's median, so
    such rows are read in-sample as before.

    The full profile is fitted on the very rows whose residuals train the forecaster: in-sample, it absorbs part
    of whatever in them is not daily (a slow wander, an odd day), and their residuals come out narrower and
    smoother than those of the days it will score, which it never saw. Fitted on out-of-fold residuals (as in
    blocked cross-validation), the forecaster learns to follow what the profile misses.

    Calibration still reads the full profile, as scoring does: out-of-fold residuals would calibrate the seasonal
    evidence for a profile fitted on (K - 1) / K of the span, wider than the one that scores when the span is
    short (NAB's two days). README, Detection quality, has what each choice measured.
    """

    folds: np.ndarray  # (m, K, bins, d): the bin medians of all but each fold, raw units
    start_us: np.ndarray  # (m,): each entity's first training timestamp
    span_us: np.ndarray  # (m,): its last minus its first, plus one

    def residuals(self, x: np.ndarray, ts_us: np.ndarray, located: Located) -> np.ndarray:
        """(n, d) float32: (x - the median of the bin in the other folds) / the entity's spread."""
        if len(self.median) == 0:
            return np.zeros((len(x), len(self.features)), dtype=np.float32)
        pos = located.pos
        fold = fold_of(ts_us, self.start_us[pos], self.span_us[pos], self.folds.shape[1])
        return self._standardized(x, self.folds[pos, fold, bin_of(ts_us, self.bins)], located)


def fold_width(span_us: np.ndarray, k: int) -> np.ndarray:
    """How long each of k folds of a span is, in microseconds: ceil(span / k), at least 1."""
    return np.maximum(-(-np.asarray(span_us, dtype=np.int64) // k), 1)


def fold_of(ts_us: np.ndarray, start_us: np.ndarray, span_us: np.ndarray, k: int) -> np.ndarray:
    """Each timestamp's fold, 0..k-1: k contiguous, equal stretches of time (`fold_width`) from start_us over
    span_us (last - first + 1, so that the last timestamp is in the last fold)."""
    t = np.asarray(ts_us, dtype=np.int64) - start_us
    return np.clip(t // fold_width(span_us, k), 0, k - 1).astype(np.int64)
