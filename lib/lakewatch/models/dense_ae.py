"""Dense autoencoder for tabular rows (context 1): the pure nn.Module, its config, and its Detector.

Score = squared reconstruction error per feature, averaged over features; each feature's share of the
error is its contribution. By default it normalises globally by mean and standard deviation, as the first
Lakewatch did (per-entity normalisation is a config switch).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from lakewatch.models.base import Detector, DetectorOutput, ModelConfig, WindowSet, shares
from lakewatch.models.registry import register
from lakewatch.models.training import LoopConfig, fit_module
from lakewatch.transforms.normalization import NormalizationConfig


class DenseAEConfig(ModelConfig, LoopConfig):
    """Architecture and training of the dense autoencoder."""

    normalization: NormalizationConfig = Field(
        default_factory=lambda: NormalizationConfig(scope="global", statistic="moments"))
    hidden: list[int] = Field(default_factory=lambda: [32, 16])
    latent: int = 4


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


def _row_loss(module: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    x = windows[:, -1, :]
    return (module(x) - x).pow(2).mean(dim=1)


@register
class DenseAEDetector(Detector):
    """Row-wise: sees one row at a time, so it finds values and combinations unusual for any time."""

    name = "dense_ae"
    config_class = DenseAEConfig

    def __init__(self, n_features: int, config: DenseAEConfig) -> None:
        super().__init__(n_features, config)
        self.latent = max(1, min(config.latent, n_features // 2))
        self.module = DenseAutoencoder(n_features, list(config.hidden), self.latent)
        self.module.eval()

    @property
    def context(self) -> int:
        return 1

    def fit(self, train: WindowSet, seed: int) -> dict[str, float]:
        return fit_module(self.module, train, _row_loss, self.config, seed)

    @torch.inference_mode()
    def score(self, windows: np.ndarray) -> DetectorOutput:
        xt = torch.from_numpy(np.ascontiguousarray(windows[:, -1, :], dtype=np.float32)).to(self.device)
        errors = (self.module(xt) - xt).pow_(2).cpu().numpy().astype(np.float64)
        return DetectorOutput(errors.mean(axis=1), shares(errors))

    def state(self) -> list[dict[str, torch.Tensor]]:
        return [{k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}]

    def load_state(self, members: list[dict[str, torch.Tensor]]) -> None:
        if len(members) != 1:
            raise ValueError(f"dense_ae has one member, got {len(members)}")
        self.module.load_state_dict(members[0], strict=True)
        self.module.eval()

    def to(self, device: torch.device) -> "DenseAEDetector":
        super().to(device)
        self.module.to(device)
        return self
