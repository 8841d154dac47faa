"""Normalisation as a fitted transform: a location and a scale per entity and feature, or one for all.

Fitted from per-entity statistics that one Spark aggregation computes (`lakewatch.transforms.fitting`);
stored in the package as an Arrow IPC sidecar (a dataset can have millions of entities, too many for the
JSON manifest) and applied on the workers. An entity unseen at training falls back to the global statistics.

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

import io
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

CLIP = 1e6
IQR_TO_STD = 1.349


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
    """The fitted transform: global location/scale, and per entity when scope is entity."""

    features: list[str]
    scope: str
    global_loc: np.ndarray  # (d,)
    global_scale: np.ndarray  # (d,)
    entities: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))  # (m,), sorted
    loc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (m, d)
    scale: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (m, d)

    @classmethod
    def fit(cls, features: list[str], entities: np.ndarray, per_entity: FeatureStats, overall: FeatureStats,
            cfg: NormalizationConfig) -> "Normalizer":
        """From statistics of the training rows; `entities` sorted, per_entity in their order."""
        g_loc, g_scale = location_scale(overall, cfg, None)
        g_loc, g_scale = g_loc.reshape(-1), g_scale.reshape(-1)
        if cfg.scope == "global":
            return cls(features, "global", g_loc, g_scale)
        loc, scale = location_scale(per_entity, cfg, g_scale)
        return cls(features, "entity", g_loc, g_scale, pa.array(list(entities), pa.string()), loc, scale)

    @property
    def needs_entity(self) -> bool:
        return self.scope == "entity"

    def lookup(self, entity: pa.Array | np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(loc (n, d), scale (n, d), unseen (n,) bool) for the entity of each of n rows."""
        d = len(self.features)
        if not self.needs_entity:
            return (np.broadcast_to(self.global_loc, (n, d)), np.broadcast_to(self.global_scale, (n, d)),
                    np.zeros(n, dtype=bool))
        keys = entity if isinstance(entity, (pa.Array, pa.ChunkedArray)) else pa.array(list(entity), pa.string())
        pos = pc.index_in(keys.cast(pa.string()), value_set=self.entities).to_numpy(zero_copy_only=False)
        unseen = np.isnan(pos.astype(np.float64))
        at = np.where(unseen, 0, np.nan_to_num(pos.astype(np.float64))).astype(np.int64)
        if len(self.entities) == 0:
            return (np.broadcast_to(self.global_loc, (n, d)), np.broadcast_to(self.global_scale, (n, d)), unseen)
        loc = np.where(unseen[:, None], self.global_loc[None, :], self.loc[at])
        scale = np.where(unseen[:, None], self.global_scale[None, :], self.scale[at])
        return loc, scale, unseen

    def apply(self, x: np.ndarray, entity: pa.Array | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(normalised rows as float32, clipped to +-CLIP; the unseen-entity flag of each row)."""
        loc, scale, unseen = self.lookup(entity, len(x))
        z = (np.asarray(x, dtype=np.float64) - loc) / scale
        return np.clip(z, -CLIP, CLIP).astype(np.float32), unseen

    def to_arrow_bytes(self) -> bytes:
        """The per-entity statistics as an Arrow IPC file (the package's sidecar)."""
        arrays: list[pa.Array] = [self.entities]
        names = ["entity"]
        for j, f in enumerate(self.features):
            arrays += [pa.array(self.loc[:, j], pa.float64()), pa.array(self.scale[:, j], pa.float64())]
            names += [f"loc:{f}", f"scale:{f}"]
        table = pa.Table.from_arrays(arrays, names=names)
        sink = io.BytesIO()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()

    def manifest_entry(self, file: str | None) -> dict:
        return {"scope": self.scope, "features": self.features, "global_loc": self.global_loc.tolist(),
                "global_scale": self.global_scale.tolist(), "entities": len(self.entities), "file": file}

    @classmethod
    def from_manifest(cls, entry: dict, sidecar: bytes | None) -> "Normalizer":
        features = list(entry["features"])
        g_loc = np.asarray(entry["global_loc"], dtype=np.float64)
        g_scale = np.asarray(entry["global_scale"], dtype=np.float64)
        if entry["scope"] == "global":
            return cls(features, "global", g_loc, g_scale)
        table = pa.ipc.open_file(io.BytesIO(sidecar or b"")).read_all()
        d = len(features)
        loc = np.column_stack([table.column(f"loc:{f}").to_numpy() for f in features]) if len(table) else np.zeros((0, d))
        scale = np.column_stack([table.column(f"scale:{f}").to_numpy() for f in features]) if len(table) else np.zeros((0, d))
        return cls(features, "entity", g_loc, g_scale, table.column("entity").combine_chunks(), loc, scale)
