"""The model contract (v2): one small interface every detector follows, and what a score returns.

A detector scores causal windows of normalised rows: `score` gets (n, context, d) float32 windows, each
ending at the row it scores, and returns a `DetectorOutput`. `context` is how many past points of the same
entity one score needs (1: row-wise). Its hyperparameters are its own pydantic config class, kept in its
module; training settings shared by every model (sample size, hold-out, seed) are not part of it.

Everything after the detector (calibration, the flag, attributions) is the scoring plan's
(`lakewatch.scoring.plan`), so that no model carries a second copy of those formulas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from lakewatch.scoring.windows import WindowIndex, gather
from lakewatch.transforms.normalization import NormalizationConfig


class ModelConfig(BaseModel):
    """The base of every model's config: strict (a misspelt key is an error), and its normalisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # fields added after packages were saved, with the value those packages were trained with: a package's config
    # holds every field its code had, so a field it lacks takes this value rather than today's default
    saved_before: ClassVar[dict[str, Any]] = {}
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)

    @classmethod
    def from_package(cls, saved: dict[str, Any]) -> "ModelConfig":
        """The config a package was saved with (`saved_before` fills what older code did not have)."""
        return cls.model_validate({**cls.saved_before, **saved})


@dataclass(frozen=True)
class DetectorOutput:
    """What a detector says of n windows.

    score: (n,) raw anomaly score, finite, higher is more anomalous;
    contributions: (n, d) non-negative shares of the score per feature, summing to 1 where score > 0;
    uncertainty: (n,) or None, the model's own spread (ensembles), in the units of `score`;
    members: (n, K) or None, each ensemble member's raw score (the plan calibrates each);
    signals: (n, S) or None, a model with several kinds of evidence (`signal_names`) reports each: the plan
    calibrates every signal on its own and a row's p-value is the smallest, Bonferroni-corrected.
    """

    score: np.ndarray
    contributions: np.ndarray
    uncertainty: np.ndarray | None = None
    members: np.ndarray | None = None
    signals: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> "DetectorOutput":
        """The output for some of its rows (an index or a boolean mask)."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return DetectorOutput(self.score[rows], self.contributions[rows], pick(self.uncertainty), pick(self.members),
                              pick(self.signals))

    @staticmethod
    def concat(outs: list["DetectorOutput"]) -> "DetectorOutput":
        """The rows of several outputs (of one detector), one after the other."""
        cat = lambda name: None if getattr(outs[0], name) is None else np.concatenate(  # noqa: E731
            [getattr(o, name) for o in outs])
        return DetectorOutput(*[cat(f.name) for f in fields(DetectorOutput)])


@dataclass(frozen=True)
class WindowSet:
    """Training windows: the model's input rows (N, d + calendar channels) and the windows over them,
    materialised a batch at a time."""

    values: np.ndarray
    windows: WindowIndex

    def __len__(self) -> int:
        return len(self.windows)

    def batch(self, rows: np.ndarray | slice) -> np.ndarray:
        """Windows `rows` as (m, context, channels) float32."""
        return np.ascontiguousarray(self.values[self.windows.index[rows]], dtype=np.float32)

    def all(self) -> np.ndarray:
        return gather(self.values, self.windows)


class Detector(ABC):
    """A detector over causal windows of normalised rows: fit, score, and its weights as tensors."""

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    signal_names: ClassVar[tuple[str, ...]] = ("score",)
    learns: ClassVar[bool] = True  # False: fit learns nothing from the windows, so every window can calibrate it

    @property
    def learned_signals(self) -> tuple[str, ...]:
        """The signals that depend on what `fit` learned from the training windows: calibrated on held-out windows
        only (the others on every window)."""
        return self.signal_names if self.learns else ()

    def signal_points(self, name: str) -> int:
        """How many of a window's most recent points signal `name` reads (default: the whole context): the
        calibration of a signal not learned from the training windows uses every window holding that many
        real points, so a row-wise signal calibrates on every sampled row, as a row-wise model would."""
        return self.context

    def __init__(self, n_features: int, config: ModelConfig) -> None:
        self.n_features = n_features
        self.config = config
        self.device = torch.device("cpu")

    @property
    @abstractmethod
    def context(self) -> int:
        """Points of the same entity that one score needs, the scored one included."""

    @property
    def calendar_channels(self) -> int:
        """Calendar inputs (lakewatch.transforms.calendar) the plan appends after the features: 0, 2 or 4."""
        return 0

    @property
    def seasonal_bins(self) -> int:
        """Time-of-day bins of the seasonal profile (transforms.seasonal) whose residuals the plan appends
        after the features, one channel per feature (0: none)."""
        return 0

    @abstractmethod
    def fit(self, train: WindowSet, seed: int) -> dict[str, float]:
        """Train on windows of normal data; return training metrics (finite numbers)."""

    @abstractmethod
    def score(self, windows: np.ndarray) -> DetectorOutput:
        """Score (n, context, d [+ d seasonal residuals] [+ calendar]) windows of normalised rows; a score
        may depend on its window only. Contributions are over the d features."""

    def score_sequences(self, sequences: np.ndarray) -> DetectorOutput | None:
        """Optional fast path: score every point of (n, L, channels) sequences of consecutive rows that has a
        whole window inside its sequence (positions context - 1 .. L - 1, in order, sequence by sequence), in
        one pass: what `score` gives for the windows ending there, without computing each window anew (a
        convolutional model computes every position at once). None: not supported."""
        return None

    @abstractmethod
    def state(self) -> list[dict[str, torch.Tensor]]:
        """The weights, one dict of named tensors per ensemble member (saved as safetensors)."""

    @abstractmethod
    def load_state(self, members: list[dict[str, torch.Tensor]]) -> None:
        """Load weights saved by `state`."""

    def to(self, device: torch.device) -> "Detector":
        self.device = device
        return self


def shares(errors: np.ndarray) -> np.ndarray:
    """Per-feature errors (n, d) >= 0 as shares of their row's total (rows with no error stay 0)."""
    total = errors.sum(axis=1, keepdims=True)
    return np.divide(errors, total, out=np.zeros_like(errors, dtype=np.float64), where=total > 0)
