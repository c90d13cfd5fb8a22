"""A video GAN that learns motion: one noise vector per clip, a discriminator that judges whole clips.

Generator: text + noise -> clip code; clip code + frame-time features -> one code per frame -> a 2D
upsampling decoder with coordinate channels (where the circle is, is what motion is about). It works at
`render_size` and resizes to `image_size`: on circles, 32 px carries all the motion at a quarter of the cost.
The output is linear (clamped only when sampling): a tanh saturates on the white background and starves
the generator of gradient, which kept earlier versions from ever drawing a circle.
Discriminator: each frame and its difference to the next through a 2D encoder, temporal 1D convolutions,
and a projection head on the text (Miyato & Koyama's projection discriminator), plus a word head that
predicts the prompt's words (GANModule's `word_weight`; without it, whole prompts were ignored at random:
per-prompt accuracy flipped between 0 and 1 from seed to seed). `keypoints` = K > 0 also hands the temporal
convolutions K keypoints per frame, (x, y) each: a 1x1 convolution of the first encoder layer's features and a
spatial soft-argmax (`keypoints.py`), so that a trajectory's shape (an orbit, a bounce) is a few numbers per frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2vlab.models.gan.keypoints import SpatialSoftArgmax
from t2vlab.text.bag_of_words import MeanWordEmbedding


def time_features(num_frames: int, dim: int, device=None) -> torch.Tensor:
    """Sinusoids of the absolute frame index: (T, dim). Absolute, so speed in pixels/frame carries over T."""
    t = torch.arange(num_frames, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(-math.log(100.0) * torch.arange(dim // 2, device=device) / max(1, dim // 2 - 1))
    return torch.cat([torch.sin(t * freq), torch.cos(t * freq)], dim=1)


def coords(x: torch.Tensor) -> torch.Tensor:
    """Append x/y coordinate maps in [-1, 1] to an (N, C, H, W) tensor."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([x, xs, ys], dim=1)


def doublings_from_4(size: int, key: str = "model.generator.image_size") -> int:
    """How many 2x stages lead from 4x4 to `size`; refuses sizes the networks cannot make."""
    stages = int(math.log2(size / 4)) if size >= 8 else 0
    if stages < 1 or 4 * 2**stages != size:
        raise ValueError(f"{key}={size} is invalid; allowed: 4 * 2^k with k >= 1 (8, 16, 32, 64, ...)")
    return stages


def check_render_size(render_size: int, image_size: int, prefix: str) -> None:
    doublings_from_4(render_size, f"{prefix}.render_size")
    doublings_from_4(image_size, f"{prefix}.image_size")
    if render_size > image_size:
        raise ValueError(f"{prefix}.render_size={render_size} is invalid; allowed: <= image_size={image_size}")


class UpBlock(nn.Module):
    """2x nearest upsampling, then a 3x3 conv that also sees the pixel coordinates."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in + 2, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(coords(F.interpolate(x, scale_factor=2, mode="nearest"))), 0.2)


class VideoGenerator(nn.Module):
    def __init__(self, vocab_size: int, image_size: int = 64, render_size: int = 32, noise_dim: int = 64,
                 text_dim: int = 64, time_dim: int = 32, hidden: int = 256, base_channels: int = 128,
                 text_pooling: str = "mean") -> None:
        super().__init__()
        check_render_size(render_size, image_size, "model.generator")
        stages = doublings_from_4(render_size)
        self.image_size, self.noise_dim, self.time_dim, self.base = image_size, noise_dim, time_dim, base_channels
        self.text = MeanWordEmbedding(vocab_size, text_dim, text_pooling)
        self.clip = nn.Sequential(nn.Linear(noise_dim + text_dim, hidden), nn.LeakyReLU(0.2, True),
                                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True))
        self.frame = nn.Sequential(nn.Linear(hidden + time_dim, hidden), nn.LeakyReLU(0.2, True),
                                   nn.Linear(hidden, base_channels * 16))
        chans = [max(16, base_channels // 2**i) for i in range(stages + 1)]
        self.decoder = nn.Sequential(*(UpBlock(chans[i], chans[i + 1]) for i in range(stages)))
        self.to_rgb = nn.Conv2d(chans[-1] + 2, 3, 3, padding=1)

    def noise_shape(self, num_frames: int) -> tuple[int, ...]:
        return (self.noise_dim,)  # one vector for the whole clip

    def forward(self, noise: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                num_frames: int = 10) -> torch.Tensor:
        """noise (B, noise_dim) -> (B, T, 3, H, W), about [-1, 1]; clamped outside training."""
        B, T = noise.shape[0], num_frames
        clip = self.clip(torch.cat([noise, self.text(ids, mask)], dim=1))  # (B, hidden)
        tf = time_features(T, self.time_dim, noise.device).to(clip.dtype)  # (T, time_dim)
        x = torch.cat([clip.unsqueeze(1).expand(B, T, -1), tf.expand(B, -1, -1)], dim=2)
        x = self.frame(x).view(B * T, self.base, 4, 4)
        x = self.to_rgb(coords(self.decoder(x)))  # (B*T, 3, render, render)
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        if not self.training:
            x = x.clamp(-1, 1)
        return x.view(B, T, *x.shape[1:])


class VideoDiscriminator(nn.Module):
    predicts_words = True  # forward(..., words=True) also returns per-word logits (for GANModule.word_weight)

    def __init__(self, vocab_size: int, image_size: int = 64, render_size: int = 32, text_dim: int = 64,
                 base_channels: int = 32, features: int = 256, keypoints: int = 0, text_pooling: str = "mean") -> None:
        super().__init__()
        check_render_size(render_size, image_size, "model.discriminator")
        if keypoints < 0:
            raise ValueError(f"model.discriminator.keypoints={keypoints} is invalid; allowed: >= 0 (0: none)")
        stages = doublings_from_4(render_size)
        self.render_size = render_size
        chans = [6] + [min(features, base_channels * 2**i) for i in range(stages)]
        self.encoder = nn.ModuleList(nn.Conv2d(a + 2, b, 4, 2, 1) for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.to_feat = nn.Linear(chans[-1] * 16, features)
        self.keypoint_maps = nn.Conv2d(chans[1], keypoints, 1) if keypoints else None
        self.soft_argmax = SpatialSoftArgmax()
        self.temporal = nn.Sequential(nn.Conv1d(features + 2 * keypoints, features, 3, padding=1),
                                      nn.LeakyReLU(0.2, True),
                                      nn.Conv1d(features, features, 3, padding=1), nn.LeakyReLU(0.2, True))
        self.text = MeanWordEmbedding(vocab_size, text_dim, text_pooling)
        self.text_proj = nn.Linear(text_dim, features)
        self.head = nn.Linear(features, 1)
        self.word_head = nn.Linear(features, vocab_size)

    def forward(self, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, words: bool = False):
        """video (B, T, 3, H, W) in [-1, 1] -> one logit per clip (B,) [, word logits (B, vocab_size)]."""
        B, T = video.shape[:2]
        x = video.flatten(0, 1)
        if x.shape[-1] != self.render_size:
            x = F.avg_pool2d(x, x.shape[-1] // self.render_size)
        x = x.view(B, T, *x.shape[1:])
        motion = torch.cat([x[:, 1:] - x[:, :-1], torch.zeros_like(x[:, :1])], dim=1)
        x = torch.cat([x, motion], dim=2).flatten(0, 1)  # (B*T, 6, r, r)
        points = None
        for i, conv in enumerate(self.encoder):
            x = F.leaky_relu(conv(coords(x)), 0.2)
            if i == 0 and self.keypoint_maps is not None:
                points = self.soft_argmax(self.keypoint_maps(x)).to(x.dtype).view(B, T, -1)  # (B, T, 2K)
        h = F.leaky_relu(self.to_feat(x.flatten(1)), 0.2).view(B, T, -1)
        if points is not None:
            h = torch.cat([h, points], dim=2)
        h = h.transpose(1, 2)  # (B, F [+ 2K], T)
        h = self.temporal(h).mean(dim=2)  # (B, F)
        logits = self.head(h).squeeze(1) + (self.text_proj(self.text(ids, mask)) * h).sum(1)
        return (logits, self.word_head(h)) if words else logits
