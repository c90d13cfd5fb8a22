"""Inception-v1 I3D (Carreira & Zisserman 2017), the Kinetics-400 network FVD is defined with.

Layer names follow the common PyTorch port (`Conv3d_1a_7x7.conv3d`, `Mixed_3b.b1b.bn`, `logits.conv3d`), so
the "videogpt" state dict loads as it is; weights converted from the original checkpoint load into the same
names (see i3d_weights.py). TensorFlow "SAME" padding is emulated: the padding depends on the input size
and is split with the extra pixel at the end. The original batch norm has no scale and epsilon 1e-3; the
videogpt port used 1e-5, so `bn_eps` is a setting to reproduce numbers made with either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis so that out = ceil(size / stride), as TensorFlow's "SAME"."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
             value: float = 0.0) -> torch.Tensor:
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):  # F.pad wants W first
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads, value=value)


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> batch norm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True, activation: bool = True,
                 bias: bool = False, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPoolSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TensorFlow's max pool ignores padded cells, i.e. pads with -inf
        return F.max_pool3d(pad_same(x, self.kernel, self.stride, float("-inf")), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1; concatenated on channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int], bn_eps: float) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(in_channels, w0, bn_eps=bn_eps)
        self.b1a = Unit3D(in_channels, w1a, bn_eps=bn_eps)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(in_channels, w2a, bn_eps=bn_eps)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3, bn_eps=bn_eps)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, in_channels, branch widths) of the Inception modules, in order
MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """(N, 3, T, 224, 224) in [-1, 1] -> (N, num_classes) logits, averaged over time. T >= 9."""

    MIN_FRAMES = 9  # fewer frames leave no time step for the final 2-frame average pool

    def __init__(self, num_classes: int = 400, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), bn_eps=bn_eps)
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=bn_eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), bn_eps=bn_eps)
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*MIXED["Mixed_3b"], bn_eps=bn_eps)
        self.Mixed_3c = InceptionModule(*MIXED["Mixed_3c"], bn_eps=bn_eps)
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(*MIXED["Mixed_4b"], bn_eps=bn_eps)
        self.Mixed_4c = InceptionModule(*MIXED["Mixed_4c"], bn_eps=bn_eps)
        self.Mixed_4d = InceptionModule(*MIXED["Mixed_4d"], bn_eps=bn_eps)
        self.Mixed_4e = InceptionModule(*MIXED["Mixed_4e"], bn_eps=bn_eps)
        self.Mixed_4f = InceptionModule(*MIXED["Mixed_4f"], bn_eps=bn_eps)
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*MIXED["Mixed_5b"], bn_eps=bn_eps)
        self.Mixed_5c = InceptionModule(*MIXED["Mixed_5c"], bn_eps=bn_eps)
        self.logits = Unit3D(1024, num_classes, batch_norm=False, activation=False, bias=True)
        self.trunk = [getattr(self, name) for name in (
            "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
            "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
            "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3 or x.shape[2] < self.MIN_FRAMES:
            raise ValueError(f"I3D input of shape {tuple(x.shape)} is invalid; allowed: (N, 3, T >= "
                             f"{self.MIN_FRAMES}, 224, 224) in [-1, 1]")
        for layer in self.trunk:
            x = layer(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (N, 1024, T', 1, 1) at 224x224 input
        x = self.logits(x)
        return x.flatten(3).mean(dim=(2, 3))  # average over time (and space, 1x1 at 224)
