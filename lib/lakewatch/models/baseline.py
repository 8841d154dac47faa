"""The statistical baseline: how far each value is from what is usual for its entity, overall and for its hour.

Two signals per row (the plan calibrates each, per entity by default, and alarms on the smaller p-value):
- level: max over features of |z|, the value against the entity's median and robust scale (transforms.
  normalization): a value the entity never takes;
- seasonal: max over features of the residual from the entity's time-of-day profile (transforms.seasonal), in
  units of its usual spread: a value ordinary for the day but not for the hour.
Row-wise (context 1), nothing to train beyond the statistics the pipeline fits; cheap enough to run over every
row, and the baseline every backtest reports next to the deep models. On NAB-style univariate series this,
calibrated per entity, is what the published statistical detectors fall short of (see the README's Detection
quality section for its numbers).
"""

from __future__ import annotations

import numpy as np
import torch

from lakewatch.models.base import Detector, DetectorOutput, ModelConfig, WindowSet, shares
from lakewatch.models.registry import register


class BaselineConfig(ModelConfig):
    """Time-of-day bins of the seasonal profile (24: hourly)."""

    bins: int = 24


@register
class BaselineDetector(Detector):
    """Level and seasonal-profile residuals of each row, per entity."""

    name = "baseline"
    config_class = BaselineConfig
    learns = False
    signal_names = ("level", "seasonal")

    @property
    def context(self) -> int:
        return 1

    @property
    def seasonal_bins(self) -> int:
        return int(self.config.bins)

    def fit(self, train: WindowSet, seed: int) -> dict[str, float]:
        return {"train_windows": float(len(train))}

    def score(self, windows: np.ndarray) -> DetectorOutput:
        d = self.n_features
        row = np.asarray(windows[:, -1, :], dtype=np.float64)
        z, r = np.abs(row[:, :d]), np.abs(row[:, d:2 * d])
        level, seasonal = z.max(axis=1), r.max(axis=1)
        per_feature = np.maximum(z, r) ** 2
        return DetectorOutput(np.maximum(level, seasonal), shares(per_feature),
                              signals=np.column_stack([level, seasonal]))

    def state(self) -> list[dict[str, torch.Tensor]]:
        return []

    def load_state(self, members: list[dict[str, torch.Tensor]]) -> None:
        if members:
            raise ValueError(f"baseline has no weights, got {len(members)} members")
