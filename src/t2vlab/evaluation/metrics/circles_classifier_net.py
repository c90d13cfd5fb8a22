"""A small (2+1)D convolutional video classifier for the moving-circles motions.

Each block is a spatial 1x3x3 convolution that halves the resolution followed by a temporal 3x1x1 one, so
motion is seen from the first block on while the cost stays close to a 2D network's. The last block's
output averaged over time and space is the feature vector; a linear layer on it gives one logit per motion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2vlab.data.circles import PROMPT_MOTIONS

# one class per distinct motion: "circle moving up-left" and "circle moving diagonally up-left" are one class
MOTIONS: tuple[str, ...] = tuple(sorted(set(PROMPT_MOTIONS.values())))


class Block2Plus1D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                 bias=False)
        self.spatial_norm = nn.BatchNorm3d(out_channels)
        self.temporal = nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.temporal_norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.spatial_norm(self.spatial(x)))
        return F.relu(self.temporal_norm(self.temporal(x)))


class CirclesMotionNet(nn.Module):
    """Videos (N, T, C, H, W) in [0, 1] -> logits over MOTIONS.

    T must be `num_frames`; other sizes than `image_size` are resized (bilinear) first; C may be 1 or 3.
    """

    def __init__(self, num_frames: int, image_size: int, widths: tuple[int, ...] = (8, 16, 32, 64, 128)) -> None:
        super().__init__()
        self.num_frames, self.image_size = num_frames, image_size
        blocks, channels = [], 3
        for width in widths:
            blocks.append(Block2Plus1D(channels, width))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = channels
        self.head = nn.Linear(channels, len(MOTIONS))

    def fit_input(self, videos: torch.Tensor) -> torch.Tensor:
        """Check the frame count, bring the frames to image_size x image_size and 3 channels."""
        if videos.ndim != 5 or videos.shape[2] not in (1, 3):
            raise ValueError(f"videos of shape {tuple(videos.shape)} are invalid; allowed: (N, T, C, H, W), C 1 or 3")
        n, t, c, h, w = videos.shape
        if t != self.num_frames:
            raise ValueError(f"the circles classifier was trained on {self.num_frames}-frame clips; got {t}-frame "
                             f"videos (allowed: exactly {self.num_frames} frames)")
        videos = videos.float().expand(n, t, 3, h, w)
        if (h, w) != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            frames = F.interpolate(videos.reshape(n * t, 3, h, w), size=size, mode="bilinear", align_corners=False)
            videos = frames.reshape(n, t, 3, *size)
        return videos

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """(N, T, C, H, W) -> (N, feature_dim): the last block averaged over time and space."""
        x = self.fit_input(videos).transpose(1, 2) * 2 - 1  # Conv3d wants (N, C, T, H, W)
        return self.blocks(x).mean(dim=(2, 3, 4))

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(videos))
