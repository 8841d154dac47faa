"""The pure network of the `tcn` detector (models/tcn.py): K causal TCN forecasters as one grouped module, and
the arithmetic of their forecasts; the detector's fit, evidence and scoring live apart from it, in tcn.py."""

from __future__ import annotations

import torch
from torch import nn

from lakewatch.models.flatness import FLAT_LEVELS


class EnsembleTCN(nn.Module):
    """K causal TCN forecasters as one grouped network: member k sees the input and has its own weights.

    Every position of the input predicts the next point (one step ahead), so one pass over a window gives
    the forecast of each of its points from the points before it.
    """

    def __init__(self, inputs: int, outputs: int, members: int, channels: int, kernel: int, dilations: list[int],
                 dropout: float, min_log_scale: float, relational: bool = False, correlated: bool = False,
                 leveled: bool = False) -> None:
        super().__init__()
        self.members, self.outputs, self.min_log_scale = members, outputs, min_log_scale
        # the usual range of each feature over `flat_points` points (fitted, the same in every member)
        self.register_buffer("flat_ref", torch.ones(members, outputs))
        # levels each feature sat flat at in training (a floor, a cap, an idle value), NaN-padded: not "stuck" there
        self.register_buffer("flat_levels", torch.full((members, outputs, FLAT_LEVELS), float("nan")))
        if relational:  # each feature's regression on the others (models.relations), the same in every member
            self.register_buffer("relate_weights", torch.zeros(members, outputs, outputs, dtype=torch.float64))
            self.register_buffer("relate_bias", torch.zeros(members, outputs, dtype=torch.float64))
            self.register_buffer("relate_scale", torch.ones(members, outputs, dtype=torch.float64))
        if relational and leveled:  # each feature's coefficient on its level, and what is left's scale
            self.register_buffer("relate_level_weight", torch.zeros(members, outputs, dtype=torch.float64))
            self.register_buffer("relate_level_scale", torch.ones(members, outputs, dtype=torch.float64))
        if correlated:  # the inverse correlation of the standardised forecast errors (fitted, in every member)
            self.register_buffer("error_precision", torch.eye(outputs, dtype=torch.float64).repeat(members, 1, 1))
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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (n, T, inputs) -> (mean, log scale), each (n, members, T, outputs): position t's forecast of t + 1."""
        n, steps = len(x), x.shape[1]
        h = self.inp(x.transpose(1, 2).repeat(1, self.members, 1))  # (n, members * inputs, T)
        for block, d in zip(self.blocks, self.pads):
            y = self.drop(self.act(self._causal(block["conv1"], h, d)))
            y = self.drop(self.act(self._causal(block["conv2"], y, d)))
            h = h + y
        out = self.head(h).view(n, self.members, 2, self.outputs, steps).permute(0, 1, 2, 4, 3)
        return out[:, :, 0], out[:, :, 1].clamp(min=self.min_log_scale)


def receptive_field(kernel: int, dilations: list[int]) -> int:
    """Past points one forecast sees: two causal convolutions per block."""
    return 1 + 2 * (kernel - 1) * sum(dilations)


def split_window(windows: torch.Tensor, n_features: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(every point but the last, with every channel; every point but the first, the n_features channels from
    `offset` only): the inputs and what each position forecasts."""
    return windows[:, :-1, :], windows[:, 1:, offset:offset + n_features]


def predictive(mean: torch.Tensor, log_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's predictive mean and variance from its members' (n, K, ...) means and log scales: mean_k mu_k
    and mean_k s_k^2 + var_k mu_k."""
    mu = mean.mean(dim=1)
    # the members' spread as a mean of squares: torch's var over a middle dimension is ~15x slower on CPUs
    return mu, torch.exp(2 * log_scale).mean(dim=1) + (mean - mu[:, None]).pow(2).mean(dim=1)


def standardized_errors(mean: torch.Tensor, log_scale: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each feature's signed error r under the ensemble's predictive distribution (targets without the K axis)."""
    mu, total_var = predictive(mean, log_scale)
    return (targets - mu) / total_var.sqrt()
