"""Training loops, apart from the modules: deterministic, with a robust pass against contaminated data."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lakewatch.config import TrainingSettings


def _epoch(module: nn.Module, x: torch.Tensor, opt: torch.optim.Optimizer, batch: int, gen: torch.Generator) -> float:
    module.train()
    order = torch.randperm(len(x), generator=gen)
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[order[i : i + batch]]
        loss = nn.functional.mse_loss(module(xb), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(xb)
    module.eval()
    return total / max(1, len(x))


@torch.no_grad()
def row_errors(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (module(x) - x).pow(2).mean(dim=1)


def fit_reconstruction(module: nn.Module, x_np: np.ndarray, cfg: TrainingSettings) -> dict[str, float]:
    """Fit a reconstruction model; after the warm-up, drop the worst-reconstructed fraction and go on.

    Dropping the rows the model finds hardest after a few epochs keeps unlabeled anomalies in the training
    data from being learned as normal (the contamination-robust option).
    """
    torch.manual_seed(cfg.seed)
    for layer in module.modules():  # start from a seeded initialisation, whatever ran before
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32))
    opt = torch.optim.Adam(module.parameters(), lr=cfg.learning_rate)
    dropped = 0
    loss = float("nan")
    for epoch in range(cfg.epochs):
        if epoch == cfg.warmup_epochs and cfg.robust_drop_fraction > 0 and len(x) > 10:
            err = row_errors(module, x)
            keep = err <= torch.quantile(err, 1.0 - cfg.robust_drop_fraction)
            dropped = int((~keep).sum())
            x = x[keep]
        loss = _epoch(module, x, opt, cfg.batch_size, gen)
    return {"train_loss": loss, "epochs": float(cfg.epochs), "robust_dropped_rows": float(dropped)}
