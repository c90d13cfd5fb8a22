"""Gaussian blur of video frames, for blurring what a discriminator sees early in training (StyleGAN3, Karras et
al. 2021, fades such a blur out over the first images): on blurred frames a generated object in the wrong place
still overlaps the real one, so the generator gets a gradient that points to where it should be."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1D Gaussian taps exp(-k^2 / (2 sigma^2)) for k = -ceil(3 sigma) .. ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    k = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-k.square() / (2 * sigma**2))
    return (taps / taps.sum()).to(device=device, dtype=dtype)


def blur_video(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, T, C, H, W) -> the same, each frame and channel blurred by a Gaussian of `sigma` pixels (separable,
    reflected borders). sigma <= 0 returns the input unchanged."""
    if sigma <= 0:
        return video
    B, T, C, H, W = video.shape
    taps = gaussian_kernel(sigma, video.dtype, video.device)
    pad = min(taps.numel() // 2, H - 1, W - 1)
    if pad < taps.numel() // 2:  # frames smaller than the kernel: trim it (reflection needs pad < size)
        taps = taps[taps.numel() // 2 - pad: taps.numel() // 2 + pad + 1]
        taps = taps / taps.sum()
    x = video.reshape(B * T, C, H, W)
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), taps.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)
    return x.reshape(B, T, C, H, W)
