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

    def __init__(self, scales: list[int] | tuple[int, ...] = (1, 2, 4, 8, 16), prior_weight: float = 1.0,
                 spread_weight: float = 0.1, moments_weight: float = 1.0) -> None:
        scales = [int(s) for s in scales]
        if not scales or any(s < 1 for s in scales):
            raise ValueError(f"loss.scales={scales} is invalid; allowed: a non-empty list of pooling sizes >= 1")
        if prior_weight <= 0:
            raise ValueError(f"loss.prior_weight={prior_weight} is invalid; allowed: > 0")
        for key, value in (("spread_weight", spread_weight), ("moments_weight", moments_weight)):
            if value < 0:
                raise ValueError(f"loss.{key}={value} is invalid; allowed: >= 0")
        self.scales, self.prior_weight = scales, prior_weight
        self.spread_weight, self.moments_weight = spread_weight, moments_weight

    def reconstruction(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred, target = pred.float(), target.float()
        return sum(F.mse_loss(F.avg_pool2d(pred, s), F.avg_pool2d(target, s)) for s in self.scales)

    def spread(self, embeds: torch.Tensor) -> torch.Tensor:
        """Pulls each embedding feature towards mean 0 and std 1 over the batch. Left alone, the frame encoder
        puts every frame at nearly the same point (a large shared offset, a tiny spread), so cosine
        similarities between frames are all ~1 and say nothing: the Splitter's losses and accuracy need them
        to mean something."""
        e = embeds.float()
        return self.spread_weight * (e.mean(0).square().mean() + (e.std(0) - 1).square().mean())

    def moments(self, predicted: torch.Tensor, frames: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """A linear read-out of the embedding must give where the frame's foreground is and how big it is.
        Without it the frame encoder finds the circle's position late and by chance (runs sat on a blurred
        average frame for hundreds of steps, a different number each seed); with it, position is in the
        embedding from the start and lies along straight directions, so embeddings of a moving circle move
        steadily too."""
        return self.moments_weight * F.mse_loss(predicted.float(), pixel_moments(frames, background))

    def prior(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.prior_weight * F.mse_loss(pred.float(), target.float())


def pixel_moments(frames: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """frames (N,3,H,W) in [0,1], background (3,) -> (N,3): foreground centroid x, y in [-1,1] and the square
    root of its area fraction (proportional to a disc's radius). Read from the pixels; no labels."""
    frames = frames.float()
    mass = (frames - background.view(1, 3, 1, 1).to(frames)).abs().amax(1)  # (N,H,W)
    H, W = mass.shape[-2:]
    total = mass.sum((1, 2)).clamp_min(1e-6)
    ys = torch.linspace(-1, 1, H, device=frames.device).view(1, H, 1)
    xs = torch.linspace(-1, 1, W, device=frames.device).view(1, 1, W)
    cx, cy = (mass * xs).sum((1, 2)) / total, (mass * ys).sum((1, 2)) / total
    return torch.stack([cx, cy, (total / (H * W)).sqrt()], dim=1)
