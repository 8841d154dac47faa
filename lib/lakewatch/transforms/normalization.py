"""Normalisation as a fitted transform: a location and a scale per entity and feature, or one for all.

Fitted from per-entity statistics that one Spark aggregation computes (`lakewatch.transforms.fitting`);
stored in the package's entity file (transforms.entities: a dataset can have millions of entities, too many
for the JSON manifest) and applied on the workers. An entity unseen at training gets the global statistics.

- `statistic: robust`: location = median, scale = IQR / 1.349 (the standard deviation of a normal with that
  IQR), floored so that a flat series does not divide by zero: the scale is at least `floor_std` times the
  standard deviation, and at least `floor_rel` times the global scale of the feature (a constant entity gets
  the global scale's share, so a change of one global unit shows as 1 / floor_rel).
- `statistic: moments`: mean and standard deviation (std 1 for a constant feature), as the first versions did.
- `scope: global` uses the global statistics for every entity.

Normalised values are clipped to +-CLIP: a finite but extreme input (say 1e30 against a scale of 1e-3) stays
a very large, finite number, so no score downstream is ever inf - inf = NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from lakewatch.transforms.entities import Located

CLIP = 1e6
IQR_TO_STD = 1.349
MAD_TO_STD = 1.4826  # a normal's standard deviation over its median absolute deviation


class NormalizationConfig(BaseModel):
    """How a model normalises its inputs: part of each model's own config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scope: Literal["entity", "global"] = "entity"
    statistic: Literal["robust", "moments"] = "robust"
    floor_std: float = 0.1
    floor_rel: float = 0.01


@dataclass(frozen=True)
class FeatureStats:
    """Statistics of features over a set of rows: what the Spark aggregation returns per entity and overall."""

    count: np.ndarray  # (m,) rows
    median: np.ndarray  # (m, d)
    iqr: np.ndarray  # (m, d)
    mean: np.ndarray  # (m, d)
    std: np.ndarray  # (m, d)


def location_scale(stats: FeatureStats, cfg: NormalizationConfig, global_scale: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(location, scale) from statistics, per cfg; global_scale is None when these are the global statistics."""
    if cfg.statistic == "moments":
        loc, scale = stats.mean, np.where(stats.std > 1e-12, stats.std, 1.0)
        return loc.astype(np.float64), scale.astype(np.float64)
    scale = stats.iqr / IQR_TO_STD
    scale = np.maximum(scale, cfg.floor_std * np.nan_to_num(stats.std))
    if global_scale is not None:
        scale = np.maximum(scale, cfg.floor_rel * global_scale)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return stats.median.astype(np.float64), scale.astype(np.float64)


@dataclass(frozen=True)
class Normalizer:
    """The fitted transform: global location/scale, and per entity (aligned with the package's EntityIndex)
    when scope is entity."""

    features: list[str]
    scope: str
    global_loc: np.ndarray  # (d,)
    global_scale: np.ndarray  # (d,)
    loc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (m, d)
    scale: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (m, d)

    @classmethod
    def fit(cls, features: list[str], per_entity: FeatureStats, overall: FeatureStats,
            cfg: NormalizationConfig) -> "Normalizer":
        """From statistics of the training rows, per_entity in the order of the entity index."""
        g_loc, g_scale = location_scale(overall, cfg, None)
        g_loc, g_scale = g_loc.reshape(-1), g_scale.reshape(-1)
        if cfg.scope == "global":
            return cls(features, "global", g_loc, g_scale)
        loc, scale = location_scale(per_entity, cfg, g_scale)
        return cls(features, "entity", g_loc, g_scale, loc, scale)

    @property
    def needs_entity(self) -> bool:
        return self.scope == "entity"

    def apply(self, x: np.ndarray, located: Located | None = None) -> np.ndarray:
        """Normalised rows as float32, clipped to +-CLIP (an unseen entity gets the global statistics)."""
        x = np.asarray(x, dtype=np.float64)
        if not self.needs_entity or located is None or len(self.loc) == 0:
            z = (x - self.global_loc) / self.global_scale
        else:
            unseen = located.unseen[:, None]
            loc = np.where(unseen, self.global_loc[None, :], self.loc[located.pos])
            scale = np.where(unseen, self.global_scale[None, :], self.scale[located.pos])
            z = (x - loc) / scale
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def columns(self) -> dict[str, np.ndarray]:
        """Its per-entity columns for the entity file (none for global scope)."""
        if not self.needs_entity:
            return {}
        out: dict[str, np.ndarray] = {}
        for j, f in enumerate(self.features):
            out[f"loc:{f}"], out[f"scale:{f}"] = self.loc[:, j], self.scale[:, j]
        return out

    def manifest_entry(self) -> dict:
        return {"scope": self.scope, "features": self.features, "global_loc": self.global_loc.tolist(),
                "global_scale": self.global_scale.tolist()}

    @classmethod
    def from_manifest(cls, entry: dict, table: pa.Table | None) -> "Normalizer":
        features = list(entry["features"])
        g_loc = np.asarray(entry["global_loc"], dtype=np.float64)
        g_scale = np.asarray(entry["global_scale"], dtype=np.float64)
        if entry["scope"] == "global" or table is None:
            return cls(features, "global", g_loc, g_scale)
        d = len(features)
        stack = lambda kind: (np.column_stack([table.column(f"{kind}:{f}").to_numpy() for f in features])  # noqa: E731
                              if len(table) else np.zeros((0, d)))
        return cls(features, "entity", g_loc, g_scale, stack("loc"), stack("scale"))
