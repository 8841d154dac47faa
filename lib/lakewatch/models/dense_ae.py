"""Dense autoencoder for tabular rows: the pure nn.Module, and the Detector that trains and applies it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lakewatch.config import TrainingSettings
from lakewatch.models.base import Detector
from lakewatch.models.training import fit_reconstruction


class DenseAutoencoder(nn.Module):
    """Encoder through `hidden` to a `latent` bottleneck, and a mirrored decoder."""

    def __init__(self, n_features: int, hidden: list[int], latent: int) -> None:
        super().__init__()
        sizes = [n_features, *hidden, latent]
        enc: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            enc += [nn.Linear(a, b), nn.GELU()]
        dec: list[nn.Module] = []
        back = sizes[::-1]
        for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
            dec.append(nn.Linear(a, b))
            if i < len(back) - 2:
                dec.append(nn.GELU())
        self.encoder = nn.Sequential(*enc[:-1])  # no activation on the bottleneck
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class DenseAEDetector(Detector):
    """Score = squared reconstruction error per feature, averaged over features."""

    model_type = "dense_ae"

    def __init__(self, n_features: int, hyperparameters: dict[str, Any]) -> None:
        super().__init__(n_features, hyperparameters)
        self.module = DenseAutoencoder(n_features, list(hyperparameters["hidden"]), int(hyperparameters["latent"]))
        self.module.eval()

    @classmethod
    def hyperparameters_from(cls, n_features: int, training: TrainingSettings) -> dict[str, Any]:
        latent = max(1, min(training.latent, n_features // 2))
        return {"hidden": list(training.hidden), "latent": latent}

    def fit(self, x: np.ndarray, training: TrainingSettings) -> dict[str, float]:
        return fit_reconstruction(self.module, x, training)

    @torch.inference_mode()
    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        err = (self.module(xt) - xt).pow_(2)
        return err.cpu().numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(tensors, strict=True)
        self.module.eval()

    def to(self, device: torch.device) -> "DenseAEDetector":
        super().to(device)
        self.module.to(device)
        return self
