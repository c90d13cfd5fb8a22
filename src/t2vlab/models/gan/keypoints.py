"""Spatial soft-argmax: where each feature channel is, as two coordinates per channel.

Levine, Finn, Darrell and Abbeel ("End-to-end training of deep visuomotor policies", 2016) turn a convolutional
feature map a (C, H, W) into keypoints: per channel c, a softmax over the positions, then the expected position

    p_c(i, j) = exp(a_c(i, j)) / sum_{i', j'} exp(a_c(i', j'))
    x_c = sum_{i, j} p_c(i, j) u_j,   y_c = sum_{i, j} p_c(i, j) v_i

with u, v the pixel-centre coordinates in [-1, 1] (x to the right, y down). A discriminator that sees these per
frame gets each object's trajectory as a few numbers, which its temporal convolutions can test for an orbit, a
bounce or a zigzag directly.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialSoftArgmax(nn.Module):
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, 2): the expected (x, y) of each channel, in float32."""
        n, c, h, w = features.shape
        p = features.float().flatten(2).softmax(dim=2).view(n, c, h, w)
        xs = (torch.arange(w, device=features.device, dtype=torch.float32) + 0.5) * 2 / w - 1
        ys = (torch.arange(h, device=features.device, dtype=torch.float32) + 0.5) * 2 / h - 1
        return torch.stack([(p.sum(dim=2) * xs).sum(dim=2), (p.sum(dim=3) * ys).sum(dim=2)], dim=2)
