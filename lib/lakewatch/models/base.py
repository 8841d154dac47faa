"""The one small interface every detector follows (fit, score, explain; state to save and load)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from lakewatch.config import TrainingSettings


class Detector(ABC):
    """A detector over normalised feature rows: higher scores are more anomalous."""

    model_type: ClassVar[str]

    def __init__(self, n_features: int, hyperparameters: dict[str, Any]) -> None:
        self.n_features = n_features
        self.hyperparameters = hyperparameters
        self.device = torch.device("cpu")

    @classmethod
    @abstractmethod
    def hyperparameters_from(cls, n_features: int, training: TrainingSettings) -> dict[str, Any]:
        """The architecture for this many features, from the training settings."""

    @abstractmethod
    def fit(self, x: np.ndarray, training: TrainingSettings) -> dict[str, float]:
        """Train on normalised rows; return training metrics."""

    @abstractmethod
    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Per-row, per-feature contribution to the score, shape (n, n_features), non-negative."""

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The weights, as named tensors (saved with safetensors: no pickled code)."""

    @abstractmethod
    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None: ...

    def to(self, device: torch.device) -> "Detector":
        self.device = device
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """The raw anomaly score of each row: its mean per-feature error."""
        return self.feature_errors(x).mean(axis=1)

    def explain(self, x: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(feature indices, shares of the error) of the top_k contributing features of each row."""
        errors = self.feature_errors(x)
        return top_shares(errors, top_k)


def top_shares(errors: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top_k features of each row by error, with their share of the row's total error."""
    k = min(top_k, errors.shape[1])
    idx = np.argsort(-errors, axis=1, kind="stable")[:, :k]
    total = errors.sum(axis=1, keepdims=True)
    shares = np.take_along_axis(errors, idx, axis=1) / np.where(total > 0, total, 1.0)
    return idx, shares
