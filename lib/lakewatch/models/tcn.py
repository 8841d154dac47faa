"""A temporal convolutional forecaster (TCN), as a deep ensemble: the default temporal model.

The pure modules (`CausalTCN`, one member; `EnsembleTCN`, K members run as one grouped network) are apart
from the Detector that trains and applies them. Each member forecasts the last point of a window from the
points before it: a mean and a scale per feature (Gaussian likelihood), so that the error is measured in
units of what the member expected there; noisy hours of a daily cycle raise the scale instead of alarms.

Score: with the members' means mu_k and scales s_k, the ensemble's predictive distribution has mean
mu = mean_k mu_k and variance s^2 = mean_k s_k^2 + var_k mu_k; r_j = (x_j - mu_j) / s_j per feature, and the
score is mean_j r_j^2 (each feature's share of it is its contribution). Each member's own score (its r^2 mean)
goes to the plan, which calibrates the members to give the uncertainty: their spread in -log10 p-value, large
where the members disagree, i.e. where the data is unlike what they were trained on.

Why this shape (research and measurements in the closing note of "Detection quality"): small, dilated, causal
convolutions over a window of W points (receptive field = W - 1) are what wins among deep models on TSB-AD's
multivariate and event-level univariate rankings (its CNN forecaster), are cheap on CPUs, and need little
data; the window sees the entity's recent history, and calendar inputs (time of day and week) let a model
with a window shorter than a day learn daily and weekly cycles.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from lakewatch.models.base import Detector, DetectorOutput, ModelConfig, WindowSet, shares
from lakewatch.models.registry import register
from lakewatch.models.training import LoopConfig, fit_module
from lakewatch.transforms.calendar import CALENDAR_CHANNELS

MIN_LOG_SCALE = -4.0  # the smallest scale a member may predict: e^-4 = 0.018 normalised units


class TCNConfig(ModelConfig, LoopConfig):
    """Architecture, ensemble and training of the TCN forecaster."""

    window: int = 64
    channels: int = 32
    kernel: int = 3
    dilations: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16])
    dropout: float = 0.1
    members: int = 3
    calendar: bool = True
    epochs: int = 20
    batch_size: int = 256
    weight_decay: float = 1e-4


class EnsembleTCN(nn.Module):
    """K causal TCN forecasters as one grouped network: member k sees the input and has its own weights."""

    def __init__(self, inputs: int, outputs: int, members: int, channels: int, kernel: int, dilations: list[int],
                 dropout: float) -> None:
        super().__init__()
        self.members, self.outputs = members, outputs
        width = channels * members
        self.inp = nn.Conv1d(inputs * members, width, 1, groups=members)
        self.blocks = nn.ModuleList()
        self.pads = list(dilations)
        for d in dilations:
            self.blocks.append(nn.ModuleDict({
                "conv1": nn.Conv1d(width, width, kernel, dilation=d, groups=members),
                "conv2": nn.Conv1d(width, width, kernel, dilation=d, groups=members),
            }))
        self.kernel = kernel
        self.drop = nn.Dropout(dropout)
        self.act = nn.GELU()
        self.head = nn.Conv1d(width, 2 * outputs * members, 1, groups=members)

    def _causal(self, conv: nn.Conv1d, h: torch.Tensor, dilation: int) -> torch.Tensor:
        return conv(nn.functional.pad(h, ((self.kernel - 1) * dilation, 0)))

    def forward(self, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """past (n, T, inputs) -> (mean, log scale), each (n, members, outputs): the forecast of the next point."""
        x = past.transpose(1, 2).repeat(1, self.members, 1)  # (n, members * inputs, T)
        h = self.inp(x)
        for block, d in zip(self.blocks, self.pads):
            y = self.drop(self.act(self._causal(block["conv1"], h, d)))
            y = self.drop(self.act(self._causal(block["conv2"], y, d)))
            h = h + y
        out = self.head(h[:, :, -1:]).view(len(past), self.members, 2, self.outputs)
        return out[:, :, 0, :], out[:, :, 1, :].clamp(min=MIN_LOG_SCALE)


def _split(windows: torch.Tensor, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the points before the last, with every channel; the last point's features): input and target."""
    return windows[:, :-1, :], windows[:, -1, :n_features]


@register
class TCNDetector(Detector):
    """Forecasts each point from the window before it; scores the surprise of what came."""

    name = "tcn"
    config_class = TCNConfig

    def __init__(self, n_features: int, config: TCNConfig) -> None:
        super().__init__(n_features, config)
        inputs = n_features + self.calendar_channels
        self.module = EnsembleTCN(inputs, n_features, config.members, config.channels, config.kernel,
                                  list(config.dilations), config.dropout)
        self.module.eval()

    @property
    def context(self) -> int:
        return int(self.config.window)

    @property
    def calendar_channels(self) -> int:
        return CALENDAR_CHANNELS if self.config.calendar else 0

    def _nll(self, module: nn.Module, windows: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood of the last point, summed over members, averaged over features."""
        past, target = _split(windows, self.n_features)
        mean, log_scale = module(past)
        z = (target[:, None, :] - mean) * torch.exp(-log_scale)
        return (0.5 * z.pow(2) + log_scale).mean(dim=2).sum(dim=1)

    def fit(self, train: WindowSet, seed: int) -> dict[str, float]:
        return fit_module(self.module, train, self._nll, self.config, seed)

    @torch.inference_mode()
    def score(self, windows: np.ndarray) -> DetectorOutput:
        w = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device)
        past, target = _split(w, self.n_features)
        mean, log_scale = self.module(past)
        var = torch.exp(2 * log_scale)
        member_r2 = ((target[:, None, :] - mean).pow(2) / var).mean(dim=2)  # (n, K)
        mu = mean.mean(dim=1)
        total_var = var.mean(dim=1) + mean.var(dim=1, unbiased=False)
        r2 = ((target - mu).pow(2) / total_var).double().cpu().numpy()
        return DetectorOutput(r2.mean(axis=1), shares(r2), members=member_r2.double().cpu().numpy())

    def state(self) -> list[dict[str, torch.Tensor]]:
        """One dict per member, cut out of the grouped network (so that each member is its own file)."""
        full = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        k_members = self.config.members
        return [{name: t.chunk(k_members, dim=0)[k].contiguous() for name, t in full.items()} for k in range(k_members)]

    def load_state(self, members: list[dict[str, torch.Tensor]]) -> None:
        if len(members) != self.config.members:
            raise ValueError(f"tcn has {self.config.members} members, got {len(members)}")
        merged = {name: torch.cat([m[name] for m in members], dim=0) for name in members[0]}
        self.module.load_state_dict(merged, strict=True)
        self.module.eval()

    def to(self, device: torch.device) -> "TCNDetector":
        super().to(device)
        self.module.to(device)
        return self
