"""A robust statistical detector: each point against the median and MAD of the points before it.

For each feature, z = (x_t - median(previous)) / max(1.4826 * MAD(previous), floor) over the `window` - 1
points before t of the same entity (after normalisation). Score = mean over features of z squared;
contributions = each feature's share of that sum. No weights, nothing to train: it is the baseline every
backtest reports next to the deep models, and the cheap first stage of a cascade.
"""

from __future__ import annotations

import numpy as np
import torch

from lakewatch.models.base import Detector, DetectorOutput, ModelConfig, WindowSet, shares
from lakewatch.models.registry import register
from lakewatch.transforms.normalization import MAD_TO_STD



class RobustZConfig(ModelConfig):
    """The window (points, the scored one included) and the floor of the scale, in normalised units."""

    window: int = 48
    floor: float = 0.05


@register
class RobustZDetector(Detector):
    """Rolling median / MAD z-score of each point against its own recent past."""

    name = "robust_z"
    config_class = RobustZConfig
    learns = False

    @property
    def context(self) -> int:
        return int(self.config.window)

    def fit(self, train: WindowSet, seed: int) -> dict[str, float]:
        return {"train_windows": float(len(train))}

    def score(self, windows: np.ndarray) -> DetectorOutput:
        w = np.asarray(windows, dtype=np.float64)
        past, now = w[:, :-1, :], w[:, -1, :]
        if past.shape[1] == 0:
            past = now[:, None, :]
        med = np.median(past, axis=1)
        mad = np.median(np.abs(past - med[:, None, :]), axis=1)
        z = (now - med) / np.maximum(MAD_TO_STD * mad, self.config.floor)
        sq = z * z
        return DetectorOutput(sq.mean(axis=1), shares(sq))

    def state(self) -> list[dict[str, torch.Tensor]]:
        return []

    def load_state(self, members: list[dict[str, torch.Tensor]]) -> None:
        if members:
            raise ValueError(f"robust_z has no weights, got {len(members)} members")
