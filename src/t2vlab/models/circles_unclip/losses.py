"""Losses of the circles_unclip stack: frame reconstruction and the prior's denoising target."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class UnclipLoss:
    """Reconstruction: MSE at several average-pooled scales. A small disc on a large background gives a
    full-resolution MSE almost no gradient towards where the disc should be until the prediction overlaps
    it; the coarse scales overlap from afar. Prior: MSE on the standardised clean embedding (Kandinsky 2.2's
    prior predicts the sample, not the noise)."""

    family = "circles_unclip"

    def __init__(self, scales: list[int] | tuple[int, ...] = (1, 2, 4, 8, 16), prior_weight: float = 1.0) -> None:
        scales = [int(s) for s in scales]
        if not scales or any(s < 1 for s in scales):
            raise ValueError(f"loss.scales={scales} is invalid; allowed: a non-empty list of pooling sizes >= 1")
        if prior_weight <= 0:
            raise ValueError(f"loss.prior_weight={prior_weight} is invalid; allowed: > 0")
        self.scales, self.prior_weight = scales, prior_weight

    def reconstruction(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred, target = pred.float(), target.float()
        return sum(F.mse_loss(F.avg_pool2d(pred, s), F.avg_pool2d(target, s)) for s in self.scales)

    def prior(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.prior_weight * F.mse_loss(pred.float(), target.float())
