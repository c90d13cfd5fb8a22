"""The two encoders of the keypoint VAE: where the object is in each real frame, and the clip's motion code.

`KeypointEncoder` reads a frame's object position as the spatial soft-argmax of a heat map (two 3x3 convolutions
with coordinate channels on the frame, at half and a quarter of the frame's size) and its
half-width from the pooled features: (x_t, y_t, s_t) per frame, x and y in [-1, 1] image coordinates, s > 0 in the
same units. The position is read off the image, not learned through a renderer's gradient: a sprite drawn away from
the object gets no gradient towards it, which is why the layered generator alone, as a VAE decoder or a GAN
generator, so often learned to hide its sprite (docs/gan.md). The keypoint bottleneck learned by reconstruction is
Jakab et al.'s ("Unsupervised learning of object landmarks through conditional image generation", 2018).

`MotionPosterior` is q(z | path, text): an MLP on the path (x, y, log s over the T frames) and the prompt's
embedding -> the mean and log-variance of a Gaussian over the noise z that the layered generator takes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2vlab.models.gan.keypoints import SpatialSoftArgmax
from t2vlab.models.gan.layered import MIN_HALF_WIDTH
from t2vlab.models.gan.video import coords


class KeypointEncoder(nn.Module):
    def __init__(self, channels: int = 32, init_half_width: float = 0.3) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"model.encoder.channels={channels} is invalid; allowed: >= 1")
        if not 0 < init_half_width <= 2:
            raise ValueError(f"model.encoder.init_half_width={init_half_width} is invalid; allowed: (0, 2]")
        self.conv1 = nn.Conv2d(3 + 2, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels + 2, channels, 3, padding=1)
        self.heat = nn.Conv2d(channels, 1, 1)
        self.soft_argmax = SpatialSoftArgmax()
        self.size = nn.Linear(channels, 1)
        nn.init.zeros_(self.size.weight)  # every frame starts at init_half_width
        nn.init.constant_(self.size.bias, math.log(math.expm1(init_half_width - MIN_HALF_WIDTH)))

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """video (B, T, 3, H, W) in [-1, 1] -> centre x, y and half-width s, each (B, T)."""
        B, T = video.shape[:2]
        x = F.avg_pool2d(video.flatten(0, 1), 2)
        x = F.leaky_relu(self.conv1(coords(x)), 0.2)
        x = F.leaky_relu(self.conv2(coords(F.avg_pool2d(x, 2))), 0.2)
        xy = self.soft_argmax(self.heat(x))[:, 0].view(B, T, 2)
        s = F.softplus(self.size(x.float().mean(dim=(2, 3)))).view(B, T) + MIN_HALF_WIDTH
        return xy[..., 0], xy[..., 1], s


class MotionPosterior(nn.Module):
    def __init__(self, num_frames: int, text_dim: int, noise_dim: int, hidden: int = 256) -> None:
        super().__init__()
        if num_frames < 1 or hidden < 1:
            raise ValueError(f"model.posterior: num_frames={num_frames}, hidden={hidden} are invalid; allowed: >= 1")
        self.num_frames = num_frames
        self.net = nn.Sequential(nn.Linear(3 * num_frames + text_dim, hidden), nn.LeakyReLU(0.2, True),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True), nn.Linear(hidden, 2 * noise_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, text: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Path x, y, s (B, T) and text embedding (B, text_dim) -> mean and log-variance of z, (B, noise_dim) each
        (the log-variance clamped to [-10, 5])."""
        if x.shape[1] != self.num_frames:
            raise ValueError(f"the posterior reads {self.num_frames}-frame paths (model.posterior.num_frames); "
                             f"got {x.shape[1]} frames; allowed: clips of dataset.settings.num_frames")
        mean, log_var = self.net(torch.cat([x, y, s.log(), text], dim=1)).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 5)

    @staticmethod
    def draw(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): a reparameterised draw from q(z | path, text)."""
        return mean + torch.randn_like(mean) * (0.5 * log_var).exp()
