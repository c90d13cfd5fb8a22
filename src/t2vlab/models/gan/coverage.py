"""A lower bound on how much of each frame a layered generator's sprite covers.

Bielski and Favaro ("Emergence of object segmentation in perturbed generative models", 2019) keep a layered GAN
from drawing an empty mask with the hinge max(0, eta - mean(m)) on the mean of the mask m. Here it is taken per
frame t of clip b, on the sprite's alpha a (its round window and the frame's edges included, so a sprite pushed
out of the picture covers nothing), and divided by eta so that its size does not depend on eta:

    penalty = mean over b, t of max(0, 1 - mean_{h,w} a[b, t, h, w] / eta)

It is 0 for every frame whose sprite covers at least eta of the picture, and 1 for an empty frame.
"""

from __future__ import annotations

import torch


def coverage_penalty(alpha: torch.Tensor, minimum: float) -> torch.Tensor:
    """alpha (B, T, 1, H, W) in [0, 1] -> the hinge above, a scalar (float32)."""
    if not 0 < minimum <= 1:
        raise ValueError(f"model.coverage_min={minimum} is invalid; allowed: (0, 1]")
    covered = alpha.float().mean(dim=(-3, -2, -1))  # (B, T)
    return (1 - covered / minimum).clamp_min(0).mean()
