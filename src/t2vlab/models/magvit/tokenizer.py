"""The MAGVIT-v2-style video tokenizer: a causal 3D CNN encoder and decoder around a quantizer.

Causal in time: every temporal kernel looks only at the current and earlier frames (padding on the past
side, the first frame repeated), so the first frame is encoded alone, and 1 + 4k frames map to 1 + k latent
frames (two stride-2 causal stages). Latent frame j >= 1 depends on frames <= 4j only. Space: a `patch`
space-to-depth fold, then stride-2 stages (2 x 2^3 = 16x by default: 64x64 frames give 4x4 latents).
A 16-frame clip is padded to 17 by repeating its last frame, and the reconstruction is cut back to 16.

Shapes: video (B,T,C,H,W) in [0,1] (the project's convention), latents (B,d,t,h,w), token ids (B,t,h,w).
The quantizer is LFQ (codebook 2^d, no lookup), FSQ or a classic VQ from vector-quantize-pytorch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from vector_quantize_pytorch import FSQ, LFQ, VectorQuantize

TEMPORAL_FACTOR = 4  # two stride-2 causal stages
QUANTIZERS = ("lfq", "fsq", "vq")


class CausalConv3d(nn.Module):
    """Conv3d over (B,C,T,H,W) that pads time on the past side only (first frame repeated) and space
    symmetrically. With temporal stride 2 and kernel 3, 1 + 2k frames give 1 + k, output j seeing frames
    2j-2 .. 2j."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3),
                 stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        kt, kh, kw = kernel
        self.time_pad = kt - 1
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride, padding=(0, kh // 2, kw // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x], dim=2)
        return self.conv(x)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of every (t, h, w) position of (B,C,T,H,W). A GroupNorm would pool statistics
    over all frames and so let the first latent depend on the last frame: this one keeps the network causal."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the fused layer_norm over a channels-last view (statistics accumulated in fp32 under bf16 autocast):
        # a training step is 1.8x faster on a CPU than with var_mean over the strided channel axis
        y = F.layer_norm(x.permute(0, 2, 3, 4, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 4, 1, 2, 3)


class ResBlock(nn.Module):
    """Norm -> SiLU -> causal conv, twice, plus the input (projected when the width changes)."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3)) -> None:
        super().__init__()
        self.body = nn.Sequential(ChannelNorm(c_in), nn.SiLU(), CausalConv3d(c_in, c_out, kernel),
                                  ChannelNorm(c_out), nn.SiLU(), CausalConv3d(c_out, c_out, kernel))
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class CausalUpsample(nn.Module):
    """2x in space, and 2x in time where `time`: a 1x1x1 conv to (2 x 2 x 2) times the channels, rearranged into
    frames and pixels (depth to space); the residual blocks after it smooth. Latent frame 0 would become two
    frames; the first is dropped, so 1 + k frames give 1 + 2k, and no frame depends on a later latent frame."""

    def __init__(self, c_in: int, c_out: int, time: bool) -> None:
        super().__init__()
        self.ft = 2 if time else 1
        self.conv = nn.Conv3d(c_in, c_out * self.ft * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(self.conv(x), "b (c ft fh fw) t h w -> b c (t ft) (h fh) (w fw)", ft=self.ft, fh=2, fw=2)
        return x[:, :, self.ft - 1:]


def _kernel(level: int, stages: int) -> tuple[int, int, int]:
    """Levels at the full frame rate (before the first temporal downsampling, large frames) mix space only;
    time is mixed by the strided causal downsamplings and at every level after them."""
    return (1, 3, 3) if level <= stages - 2 else (3, 3, 3)


class Encoder(nn.Module):
    """(B,3,T,H,W) in [-1,1] -> (B,d,t,h,w). Pixels are first folded into channels (`patch` x `patch` space to
    depth); then one stride-2 stage between consecutive widths, the last two also halving time (causally)."""

    def __init__(self, widths: list[int], latent_dim: int, blocks: int, patch: int) -> None:
        super().__init__()
        stages = len(widths) - 1
        self.patch = patch
        self.conv_in = CausalConv3d(3 * patch * patch, widths[0], (1, 3, 3))
        layers: list[nn.Module] = []
        for i in range(stages):
            layers += [ResBlock(widths[i], widths[i], _kernel(i, stages)) for _ in range(blocks)]
            time = i >= stages - 2
            layers.append(CausalConv3d(widths[i], widths[i + 1], (3 if time else 1, 3, 3), (2 if time else 1, 2, 2)))
        layers += [ResBlock(widths[-1], widths[-1]) for _ in range(blocks)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Sequential(ChannelNorm(widths[-1]), nn.SiLU(),
                                 nn.Conv3d(widths[-1], latent_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(x, "b c t (h ph) (w pw) -> b (c ph pw) t h w", ph=self.patch, pw=self.patch)
        return self.out(self.body(self.conv_in(x)))


class Decoder(nn.Module):
    """(B,d,t,h,w) -> (B,3,T,H,W), the encoder's mirror; T = 1 + 4(t - 1)."""

    def __init__(self, widths: list[int], latent_dim: int, blocks: int, patch: int) -> None:
        super().__init__()
        stages = len(widths) - 1
        self.patch = patch
        self.conv_in = CausalConv3d(latent_dim, widths[-1])
        layers: list[nn.Module] = [ResBlock(widths[-1], widths[-1]) for _ in range(blocks)]
        for i in reversed(range(stages)):  # back up to the level of widths[i]
            layers.append(CausalUpsample(widths[i + 1], widths[i], time=i >= stages - 2))
            layers += [ResBlock(widths[i], widths[i], _kernel(i, stages)) for _ in range(blocks)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Sequential(ChannelNorm(widths[0]), nn.SiLU(),
                                 CausalConv3d(widths[0], 3 * patch * patch, (1, 3, 3)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.out(self.body(self.conv_in(z)))
        return rearrange(x, "b (c ph pw) t h w -> b c t (h ph) (w pw)", ph=self.patch, pw=self.patch)


def build_quantizer(kind: str, latent_dim: int, codebook_size: int, entropy_weight: float, commitment_weight: float,
                    fsq_levels: list[int] | None, diversity_gamma: float = 1.0) -> nn.Module:
    if kind == "lfq":
        if codebook_size != 2**latent_dim:
            raise ValueError(f"model.tokenizer.codebook_size={codebook_size} is invalid for LFQ with latent_dim="
                             f"{latent_dim}; allowed: 2^latent_dim = {2**latent_dim}")
        return LFQ(dim=latent_dim, codebook_size=codebook_size, entropy_loss_weight=entropy_weight,
                   commitment_loss_weight=commitment_weight, diversity_gamma=diversity_gamma)
    if kind == "fsq":
        levels = list(fsq_levels or [])
        if len(levels) != latent_dim or math.prod(levels) != codebook_size:
            raise ValueError(f"model.tokenizer.fsq_levels={levels} is invalid; allowed: latent_dim={latent_dim} "
                             f"levels whose product is codebook_size={codebook_size}")
        return FSQ(levels=levels, dim=latent_dim)
    if kind == "vq":
        return VectorQuantize(dim=latent_dim, codebook_size=codebook_size, commitment_weight=commitment_weight,
                              kmeans_init=True, decay=0.95)
    raise ValueError(f"model.tokenizer.quantizer={kind!r} is invalid; allowed: {', '.join(QUANTIZERS)}")


class VideoTokenizer(nn.Module):
    """Video (B,T,3,H,W) in [0,1] <-> token ids (B,t,h,w); T = 1 + 4k (or 4k, padded by one frame),
    H and W multiples of 2^downsample."""

    def __init__(self, channels: int = 32, multipliers: tuple[int, ...] = (1, 2, 4, 4), patch: int = 2,
                 latent_dim: int = 10, codebook_size: int = 1024, quantizer: str = "lfq", entropy_weight: float = 0.1,
                 commitment_weight: float = 0.25, fsq_levels: list[int] | None = None, blocks: int = 1,
                 diversity_gamma: float = 1.0, entropy_temperature: float = 0.01) -> None:
        super().__init__()
        multipliers = list(multipliers)
        checks = [("channels", channels >= 8, ">= 8"), ("blocks", blocks >= 1, ">= 1"), ("patch", patch >= 1, ">= 1"),
                  ("latent_dim", latent_dim >= 1, ">= 1"), ("codebook_size", codebook_size >= 2, ">= 2"),
                  ("multipliers", len(multipliers) >= 3 and min(multipliers) >= 1,
                   "at least 3 positive entries (a stride-2 stage between entries; the last two also halve time)"),
                  ("entropy_weight", entropy_weight >= 0, ">= 0"),
                  ("commitment_weight", commitment_weight >= 0, ">= 0"),
                  ("diversity_gamma", diversity_gamma >= 0, ">= 0"),
                  ("entropy_temperature", entropy_temperature > 0, "> 0")]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"model.tokenizer.{key}={locals()[key]} is invalid; allowed: {allowed}")
        self.latent_dim, self.codebook_size, self.kind = latent_dim, codebook_size, quantizer
        self.entropy_temperature = entropy_temperature
        widths = [channels * m for m in multipliers]
        self.spatial_factor = patch * 2 ** (len(widths) - 1)
        self.encoder = Encoder(widths, latent_dim, blocks, patch)
        self.decoder = Decoder(widths, latent_dim, blocks, patch)
        self.quantizer = build_quantizer(quantizer, latent_dim, codebook_size, entropy_weight, commitment_weight,
                                         fsq_levels, diversity_gamma)

    # ------------------------------------------------------------------ shapes
    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        self.check_shape(num_frames, height, width)
        return 1 + math.ceil((num_frames - 1) / TEMPORAL_FACTOR), height // self.spatial_factor, \
            width // self.spatial_factor

    def check_shape(self, num_frames: int, height: int, width: int) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 1")
        s = self.spatial_factor
        if height % s or width % s:
            raise ValueError(f"frame size {height}x{width} is invalid for this tokenizer; allowed: multiples of {s}")

    def _pad_time(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,T,H,W): repeat the last frame up to 1 + 4k frames."""
        extra = (-(x.shape[2] - 1)) % TEMPORAL_FACTOR
        return torch.cat([x, x[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2) if extra else x

    # ------------------------------------------------------------------ the three maps
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B,T,3,H,W) in [0,1] -> continuous latents (B,d,t,h,w)."""
        B, T, C, H, W = video.shape
        self.check_shape(T, H, W)
        x = self._pad_time(rearrange(video, "b t c h w -> b c t h w") * 2 - 1)
        return self.encoder(x)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """latents (B,d,t,h,w) -> (quantized latents, ids (B,t,h,w), auxiliary losses)."""
        with torch.autocast(z.device.type, enabled=False):  # the quantizer in fp32: signs and codes are exact
            z = z.float()
            zero = z.new_zeros(())
            if self.kind == "lfq":
                (q, ids, aux), parts = self.quantizer(z, inv_temperature=1 / self.entropy_temperature,
                                                      return_loss_breakdown=True)
                return q, ids, {"aux": aux, "entropy": parts.per_sample_entropy - parts.batch_entropy,
                                "per_sample_entropy": parts.per_sample_entropy,
                                "codebook_entropy": parts.batch_entropy, "commitment": parts.commitment}
            if self.kind == "fsq":
                q, ids = self.quantizer(z)
                return q, ids, {"aux": zero}
            B, _, t, h, w = z.shape
            q, ids, commit = self.quantizer(rearrange(z, "b d t h w -> b (t h w) d"))
            q = rearrange(q, "b (t h w) d -> b d t h w", t=t, h=h, w=w)
            return q, ids.view(B, t, h, w), {"aux": commit.sum(), "commitment": commit.sum()}

    def decode_latents(self, q: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """quantized latents (B,d,t,h,w) -> video (B,T,3,H,W), unclamped, about [0,1]."""
        x = self.decoder(q)
        if num_frames is not None:
            x = x[:, :, :num_frames]
        return rearrange((x + 1) / 2, "b c t h w -> b t c h w")

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(B,T,3,H,W) -> (reconstruction (B,T,3,H,W), ids (B,t,h,w), auxiliary losses)."""
        q, ids, aux = self.quantize(self.encode(video))
        return self.decode_latents(q.to(video.dtype), video.shape[1]), ids, aux

    @torch.no_grad()
    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """(B,T,3,H,W) in [0,1] -> ids (B,t,h,w) long."""
        return self.quantize(self.encode(video))[1].long()

    def codes(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,t,h,w) -> quantized latents (B,d,t,h,w)."""
        if self.kind == "vq":
            B, t, h, w = ids.shape
            codes = self.quantizer.get_output_from_indices(ids.reshape(B, -1))
            return rearrange(codes, "b (t h w) d -> b d t h w", t=t, h=h, w=w)
        return self.quantizer.indices_to_codes(ids)

    @torch.no_grad()
    def detokenize(self, ids: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """ids (B,t,h,w) -> video (B,T,3,H,W) clamped to [0,1]."""
        q = self.codes(ids.long()).to(next(self.decoder.parameters()).dtype)
        return self.decode_latents(q, num_frames).clamp(0, 1)
