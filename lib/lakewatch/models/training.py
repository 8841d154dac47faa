"""Training loops, apart from the modules: seeded, mini-batched over windows, with a robust pass.

`fit_module` trains any module whose loss is a per-window value: after `warmup_epochs` it drops the
`robust_drop_fraction` windows the model finds hardest (unlabeled anomalies in the training data would
otherwise be learned as normal), then goes on. Same seed, same data: same weights.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from lakewatch.models.base import WindowSet


class LoopConfig(BaseModel):
    """The optimisation part of a model's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    robust_drop_fraction: float = 0.02
    warmup_epochs: int = 3
    max_windows_per_epoch: int = 200_000  # a random subset of this many windows per epoch when there are more
    epoch_fraction: float = 1.0  # the share of the windows an epoch draws (a model learning from every point of
    # a window needs only 1 / window of them to see each point once)
    min_steps: int = 0  # at least this many optimiser steps, whatever the data's size (more epochs if needed)


def seed_module(module: nn.Module, seed: int) -> None:
    """Re-initialise every layer from the seed, whatever ran before in this process."""
    torch.manual_seed(seed)
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()


WindowLoss = Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (module, windows (m, W, d)) -> loss per window (m,)


@torch.no_grad()
def window_losses(module: nn.Module, data: WindowSet, rows: np.ndarray, loss: WindowLoss, batch: int) -> torch.Tensor:
    module.eval()
    out = [loss(module, torch.from_numpy(data.batch(rows[i:i + batch]))) for i in range(0, len(rows), batch)]
    return torch.cat(out) if out else torch.zeros(0)


def fit_module(module: nn.Module, data: WindowSet, loss: WindowLoss, cfg: LoopConfig, seed: int) -> dict[str, float]:
    """Fit module on the windows of data with Adam(W); returns the last epoch's mean loss and what was dropped."""
    seed_module(module, seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rows = np.arange(len(data))
    dropped = 0
    mean_loss = float("nan")
    per_epoch = max(1, min(cfg.max_windows_per_epoch, int(np.ceil(len(rows) * cfg.epoch_fraction))))
    epochs = max(cfg.epochs, int(np.ceil(cfg.min_steps / max(1, np.ceil(per_epoch / cfg.batch_size)))))
    for epoch in range(epochs):
        if epoch == cfg.warmup_epochs and cfg.robust_drop_fraction > 0 and len(rows) > 10:
            err = window_losses(module, data, rows, loss, max(cfg.batch_size, 4096))
            keep = (err <= torch.quantile(err, 1.0 - cfg.robust_drop_fraction)).numpy()
            dropped = int((~keep).sum())
            rows = rows[keep]
        order = rows[torch.randperm(len(rows), generator=gen).numpy()][:per_epoch]
        module.train()
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            xb = torch.from_numpy(data.batch(order[i:i + cfg.batch_size]))
            batch_loss = loss(module, xb).mean()
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            total += batch_loss.item() * len(xb)
        module.eval()
        mean_loss = total / max(1, len(order))
    return {"train_loss": mean_loss, "epochs": float(epochs), "robust_dropped_windows": float(dropped),
            "train_windows": float(len(data))}
