"""A video GAN that can learn motion: one noise vector per clip, a discriminator that sees whole clips.

Generator: text + noise -> clip code; clip code + frame-time features -> per-frame code -> 2D upsampling
decoder with coordinate channels (positions are what circles motion is about).
Discriminator: each frame and its difference to the next through a 2D encoder, temporal 1D convolutions,
and a projection head on the text (Miyato & Koyama's projection discriminator).
Not yet tuned: untested against the issue's accuracy goals.
"""

from __future__ import annotations

import math

import torch
from torch import nn

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


def doublings_from_4(image_size: int) -> int:
    """How many 2x stages lead from 4x4 to image_size; refuses sizes the networks cannot make."""
    stages = int(math.log2(image_size / 4)) if image_size >= 8 else 0
    if stages < 1 or 4 * 2**stages != image_size:
        raise ValueError(f"model.image_size={image_size} is invalid; allowed: 4 * 2^k with k >= 1 "
                         "(8, 16, 32, 64, ...)")
    return stages


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Sequential(nn.Conv2d(c_in + 2, c_out, 3, padding=1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2, True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(coords(self.up(x)))


class VideoGenerator(nn.Module):
    def __init__(self, vocab_size: int, image_size: int = 64, noise_dim: int = 64, text_dim: int = 64,
                 time_dim: int = 32, base_channels: int = 128) -> None:
        super().__init__()
        stages = doublings_from_4(image_size)
        self.noise_dim, self.time_dim, self.base = noise_dim, time_dim, base_channels
        self.text = MeanWordEmbedding(vocab_size, text_dim)
        hidden = 256
        self.clip = nn.Sequential(nn.Linear(noise_dim + text_dim, hidden), nn.LeakyReLU(0.2, True),
                                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True))
        self.frame = nn.Sequential(nn.Linear(hidden + time_dim, hidden), nn.LeakyReLU(0.2, True),
                                   nn.Linear(hidden, base_channels * 16))
        chans = [max(16, base_channels // 2**i) for i in range(stages + 1)]
        self.decoder = nn.Sequential(*(UpBlock(chans[i], chans[i + 1]) for i in range(stages)))
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def noise_shape(self, num_frames: int) -> tuple[int, ...]:
        return (self.noise_dim,)  # one vector for the whole clip

    def forward(self, noise: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                num_frames: int = 10) -> torch.Tensor:
        """noise (B, noise_dim) -> (B, T, 3, H, W) in [-1, 1]."""
        B = noise.shape[0]
        clip = self.clip(torch.cat([noise, self.text(ids, mask)], dim=1))  # (B, hidden)
        tf = time_features(num_frames, self.time_dim, noise.device).to(clip.dtype)  # (T, time_dim)
        x = torch.cat([clip.unsqueeze(1).expand(B, num_frames, -1), tf.expand(B, -1, -1)], dim=2)
        x = self.frame(x).view(B * num_frames, self.base, 4, 4)
        frames = torch.tanh(self.to_rgb(self.decoder(x)))
        return frames.view(B, num_frames, *frames.shape[1:])


class VideoDiscriminator(nn.Module):
    def __init__(self, vocab_size: int, image_size: int = 64, text_dim: int = 64, base_channels: int = 32,
                 features: int = 256) -> None:
        super().__init__()
        stages = doublings_from_4(image_size)
        chans = [6] + [min(features, base_channels * 2**i) for i in range(stages)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(c_in + 2, c_out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        self.encoder = nn.ModuleList(layers)
        self.to_feat = nn.Linear(chans[-1] * 16, features)
        self.temporal = nn.Sequential(nn.Conv1d(features, features, 3, padding=1), nn.LeakyReLU(0.2, True),
                                      nn.Conv1d(features, features, 3, padding=1), nn.LeakyReLU(0.2, True))
        self.text = MeanWordEmbedding(vocab_size, text_dim)
        self.text_proj = nn.Linear(text_dim, features)
        self.head = nn.Linear(features, 1)

    def forward(self, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, H, W) in [-1, 1] -> one logit per clip (B,)."""
        B, T = video.shape[:2]
        motion = torch.cat([video[:, 1:] - video[:, :-1], torch.zeros_like(video[:, :1])], dim=1)
        x = torch.cat([video, motion], dim=2).flatten(0, 1)  # (B*T, 6, H, W)
        for layer in self.encoder:
            x = layer(coords(x)) if isinstance(layer, nn.Conv2d) else layer(x)
        h = self.to_feat(x.flatten(1)).view(B, T, -1).transpose(1, 2)  # (B, F, T)
        h = self.temporal(h).mean(dim=2)  # (B, F)
        return self.head(h).squeeze(1) + (self.text_proj(self.text(ids, mask)) * h).sum(1)
