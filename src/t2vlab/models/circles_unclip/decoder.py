"""Embedding -> frame: the circles_unclip decoder (a deterministic conv net, not a diffusion decoder).

A diffusion decoder would need hours on a CPU to draw a circle to a pixel; this one learns it in minutes.
Its input is standardised per feature with batch statistics while training (running ones after): a fresh
CLIP vision encoder's pooled token barely varies between images, and without this the decoder learns to
ignore it and draws the average frame. Coordinate channels at every scale let the convolutions
place the circle precisely.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def _coords(x: torch.Tensor) -> torch.Tensor:
    B, _, H, W = x.shape
    ys = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype).view(1, 1, H, 1).expand(B, 1, H, W)
    xs = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype).view(1, 1, 1, W).expand(B, 1, H, W)
    return torch.cat([x, xs, ys], dim=1)


class _Up(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in + 2, c_out, 3, padding=1)
        self.norm = nn.GroupNorm(min(8, c_out), c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.silu(self.norm(self.conv(_coords(x))))


class EmbeddingDecoder(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, embedding_dim: int = 64, image_size: int = 64, channels: tuple[int, ...] = (256, 128, 64, 32),
                 base_size: int = 4) -> None:
        super().__init__()
        if base_size * 2 ** len(channels) != image_size:
            raise ValueError(f"decoder: base_size {base_size} x 2^{len(channels)} up-samplings != image_size "
                             f"{image_size}; allowed: image_size = base_size * 2^len(channels)")
        self.base_size = base_size
        self.norm = nn.BatchNorm1d(embedding_dim, affine=False)
        self.inp = nn.Linear(embedding_dim, channels[0] * base_size * base_size)
        self.ups = nn.ModuleList(_Up(a, b) for a, b in zip(channels[:-1], channels[1:], strict=False))
        self.last_up = _Up(channels[-1], channels[-1])
        self.out = nn.Conv2d(channels[-1] + 2, 3, 3, padding=1)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        """embeds (N,D) -> frames (N,3,H,W), in [0,1] in eval mode."""
        x = self.inp(self.norm(embeds)).view(len(embeds), -1, self.base_size, self.base_size)  # (N, C0, 4, 4)
        for up in self.ups:
            x = up(x)
        x = self.last_up(x)
        # linear output while training: a sigmoid saturates on the white background and the disc never forms
        y = self.out(_coords(x)) + 0.5
        return y if self.training else y.clamp(0, 1)
