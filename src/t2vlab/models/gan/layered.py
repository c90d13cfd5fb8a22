"""A layered video generator: one sprite over a background, moved per frame by an affine transform whose
time course is a sum of per-clip oscillators (time as a phase).

Per clip, text + noise -> clip code h. From h:
  appearance: a sprite (RGB + alpha, `sprite_size`^2, a small upsampling decoder) and a background of
  `background_size`^2 pixels upsampled bilinearly (1: one colour per clip; larger lets the background carry
  the object, which a GAN then does, leaving the sprite unused);
  motion: K oscillators with frequency w_k = pi * sigmoid(W_w h) (radians per frame, up to Nyquist) and phase
  phi_k = W_phi h, giving per frame t the features f(t) = [sin(w_k t + phi_k), cos(w_k t + phi_k), t / 10, 1];
  the frame's centre and size are (x_t, y_t, s'_t) = C(h) f(t) + R([h, f(t)]), with C(h) a per-clip linear readout
  (an orbit, a straight move or a linear size change is exact in it) and R a small MLP for the shapes a single
  sinusoid misses (the corners of a bounce or a zigzag); half-width s_t = softplus(s'_t) + 0.02.
  `size_path="linear"` takes the size out of the oscillators: s'_t = a(h) + b(h) t / 10, one start size and one
  rate per clip (x_t, y_t as above). With the size in the oscillators, the size swung with the position along
  orbits and bounces ("wrong size" by the circles scorer). `keep_in_frame` = m bounds the centre:
  x_t = m tanh(x'_t), likewise y_t, so the centre stays inside the frame (m < 1 keeps it away from the corners):
  without it, runs pushed the sprite out of the picture, where it gets no gradient.
Frame t = alpha_t * sprite_t + (1 - alpha_t) * background, where sprite_t is the sprite resampled
(`grid_sample`) at centre (x_t, y_t) in [-1, 1] image coordinates and half-width s_t, and
alpha_t = (floor + (1 - floor) sigmoid(alpha logit)) x a round window (1 up to 0.8 s_t from the centre, 0 from s_t):
without the window the generator left the sprite's square box visible as a faint tinted halo. `alpha_floor` > 0
keeps the sprite from fading out, one of the ways a GAN hides an object its discriminator finds too fake.
`return_alpha=True` hands alpha to the training loop, which can bound the sprite's area (`GANModule.coverage_min`).

The inductive bias is LR-GAN's (Yang et al. 2017: background, foreground appearance and mask, and an affine
transform, composed) with StyleGAN-V's idea of motion as per-clip phases and frequencies of sinusoids (Skorokhodov et
al. 2022); it borrows those ideas and implements neither paper. It assumes one moving object whose shape changes
only by scale: right for circles, a limitation on real video, where `model=video_gan` makes no such assumption.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2vlab.models.gan.video import UpBlock, doublings_from_4
from t2vlab.text.bag_of_words import MeanWordEmbedding

MIN_HALF_WIDTH = 0.02  # of the image's half-width: keeps 1 / s_t finite
SIZE_PATHS = ("oscillators", "linear")


class LayeredVideoGenerator(nn.Module):
    def __init__(self, vocab_size: int, image_size: int = 64, noise_dim: int = 64, text_dim: int = 64,
                 hidden: int = 256, sprite_size: int = 16, sprite_channels: int = 64, oscillators: int = 8,
                 background_size: int = 1, init_half_width: float = 0.3, size_path: str = "oscillators",
                 alpha_floor: float = 0.0, keep_in_frame: float | None = None, text_pooling: str = "mean") -> None:
        super().__init__()
        stages = doublings_from_4(sprite_size, "model.generator.sprite_size")
        checks = [("oscillators", oscillators >= 1, ">= 1"), ("background_size", background_size >= 1, ">= 1"),
                  ("init_half_width", 0 < init_half_width <= 2, "(0, 2]"), ("image_size", image_size >= 8, ">= 8"),
                  ("size_path", size_path in SIZE_PATHS, " or ".join(SIZE_PATHS)),
                  ("alpha_floor", 0 <= alpha_floor < 1, "[0, 1)"),
                  ("keep_in_frame", keep_in_frame is None or 0 < keep_in_frame <= 1, "null or (0, 1]")]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"model.generator.{key}={locals()[key]!r} is invalid; allowed: {allowed}")
        self.image_size, self.noise_dim, self.bg_size = image_size, noise_dim, background_size
        self.size_path, self.alpha_floor, self.keep_in_frame = size_path, alpha_floor, keep_in_frame
        paths = 3 if size_path == "oscillators" else 2  # (x, y[, s']) from the oscillators
        self.text = MeanWordEmbedding(vocab_size, text_dim, text_pooling)
        self.clip = nn.Sequential(nn.Linear(noise_dim + text_dim, hidden), nn.LeakyReLU(0.2, True),
                                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True))
        feats = 2 * oscillators + 2
        self.freq = nn.Linear(hidden, oscillators)
        self.phase = nn.Linear(hidden, oscillators)
        self.readout = nn.Linear(hidden, paths * feats)  # C(h): per clip, (x, y[, s']) as a linear function of f(t)
        self.residual = nn.Sequential(nn.Linear(hidden + feats, hidden // 2), nn.LeakyReLU(0.2, True),
                                      nn.Linear(hidden // 2, paths))
        self.size = nn.Linear(hidden, 2) if size_path == "linear" else None  # (a, b): s' = a + b t / 10
        for layer in (self.readout, self.residual[-1], self.size):  # start still, centred, at init_half_width
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.readout.weight.normal_(0, 0.01)
            size_bias = self.residual[-1].bias[2:] if self.size is None else self.size.bias[:1]
            size_bias.fill_(math.log(math.expm1(init_half_width - MIN_HALF_WIDTH)))
            # frequencies start spread from 0.05 to 3 radians per frame (log-spaced), phases anywhere
            w = torch.logspace(math.log10(0.05), math.log10(3.0), oscillators) / math.pi
            self.freq.bias.copy_(torch.log(w / (1 - w)))
            self.freq.weight.mul_(0.1)
        chans = [max(16, sprite_channels // 2**i) for i in range(stages + 1)]
        self.sprite_base = nn.Linear(hidden, chans[0] * 16)
        self.sprite = nn.Sequential(*(UpBlock(chans[i], chans[i + 1]) for i in range(stages)))
        self.to_rgba = nn.Conv2d(chans[-1], 4, 3, padding=1)
        self.background = nn.Linear(hidden, 3 * background_size**2)
        nn.init.zeros_(self.background.weight)  # starts as one learned image shared by every clip

    def noise_shape(self, num_frames: int) -> tuple[int, ...]:
        return (self.noise_dim,)  # one vector for the whole clip

    def features(self, h: torch.Tensor, num_frames: int) -> torch.Tensor:
        """f(t) for every frame: (B, T, 2K + 2)."""
        t = torch.arange(num_frames, device=h.device, dtype=h.dtype).view(1, -1, 1)
        angle = math.pi * torch.sigmoid(self.freq(h)).unsqueeze(1) * t + self.phase(h).unsqueeze(1)  # (B, T, K)
        ones = torch.ones_like(angle[..., :1])
        return torch.cat([angle.sin(), angle.cos(), t.expand_as(ones) / 10, ones], dim=2)

    def trajectory(self, h: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centre x, y in [-1, 1] image coordinates and sprite half-width s, each (B, T)."""
        B, T = h.shape[0], num_frames
        f = self.features(h, T)
        coef = self.readout(h).view(B, -1, f.shape[2])  # (B, paths, F)
        out = torch.einsum("bpf,btf->btp", coef, f)
        out = out + self.residual(torch.cat([h.unsqueeze(1).expand(B, T, -1), f], dim=2))
        if self.size is None:
            size = out[..., 2]
        else:
            a, b = self.size(h).unsqueeze(1).unbind(2)  # (B, 1) each
            size = a + b * f[..., -2]  # f[..., -2] = t / 10
        x, y = out[..., 0], out[..., 1]
        if self.keep_in_frame is not None:
            x, y = self.keep_in_frame * x.tanh(), self.keep_in_frame * y.tanh()
        return x, y, F.softplus(size) + MIN_HALF_WIDTH

    def code(self, noise: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The clip code h (B, hidden) from noise (B, noise_dim) and the prompt's embedding `self.text(ids, mask)`."""
        return self.clip(torch.cat([noise.to(text.dtype), text], dim=1))

    def forward(self, noise: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, num_frames: int = 10,
                return_alpha: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """noise (B, noise_dim) -> (B, T, 3, H, W), about [-1, 1]; clamped outside training. With `return_alpha`,
        also the sprite's alpha per frame, (B, T, 1, H, W) (what `GANModule.coverage_min` bounds)."""
        h = self.code(noise, self.text(ids, mask))
        return self.render(h, *self.trajectory(h, num_frames), return_alpha=return_alpha)

    def render(self, h: torch.Tensor, x: torch.Tensor, y: torch.Tensor, s: torch.Tensor,
               return_alpha: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Clip code h (B, hidden) and a path, centre x, y and half-width s each (B, T) -> the clip (B, T, 3, H, W)
        [and alpha (B, T, 1, H, W)]: h's sprite and background, the sprite placed on the path. `forward` renders
        h's own path (`trajectory`); a model that reads the path off real frames renders that one."""
        B, T, S = x.shape[0], x.shape[1], self.image_size
        rgba = self.to_rgba(self.sprite(self.sprite_base(h).view(B, -1, 4, 4)))  # (B, 4, sprite, sprite)
        # output coordinate u maps to sprite coordinate (u - centre) / s
        inv = 1 / s
        zero = torch.zeros_like(inv)
        theta = torch.stack([torch.stack([inv, zero, -x * inv], -1), torch.stack([zero, inv, -y * inv], -1)], -2)
        grid = F.affine_grid(theta.flatten(0, 1).float(), [B * T, 4, S, S], align_corners=False).to(rgba.dtype)
        layer = F.grid_sample(rgba.repeat_interleave(T, dim=0), grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)  # (B*T, 4, S, S)
        # a round window in sprite coordinates (1 inside radius 0.8, 0 from 1): the sprite's box never shows
        window = ((1 - grid.float().norm(dim=-1)) / 0.2).clamp(0, 1).unsqueeze(1).to(layer.dtype)
        alpha = (self.alpha_floor + (1 - self.alpha_floor) * torch.sigmoid(layer[:, 3:])) * window
        bg = self.background(h).view(B, 3, self.bg_size, self.bg_size)
        bg = F.interpolate(bg, size=(S, S), mode="bilinear", align_corners=False).unsqueeze(1)  # one per clip
        alpha, sprite = alpha.view(B, T, 1, S, S), layer[:, :3].view(B, T, 3, S, S)
        video = alpha * sprite + (1 - alpha) * bg
        video = video if self.training else video.clamp(-1, 1)
        return (video, alpha) if return_alpha else video
