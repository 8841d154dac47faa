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
        n, d = len(x), len(self.features)
        if len(self.median) == 0:
            return np.zeros((n, d), dtype=np.float32)
        pos = located.pos
        med = self.median[pos, bin_of(ts_us, self.bins)]
        r = (np.asarray(x, dtype=np.float64) - med) / self.scale[pos]
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
