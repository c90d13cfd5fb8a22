"""Masks, condition regions and the COMMIT loss of the MAGVIT family (plain torch).

Shapes: B clips, T frames, C channels, H x W pixels; t x h x w latent tokens, N = t*h*w.

Tasks and what they show of the real video (the "condition region"; the rest is generated). The middle half of
a side of length S is [S//4, S - S//4):
- generation: nothing (text-, class- or unconditional generation).
- frame_prediction: the first `cond_frames` frames (default 1).
- frame_interpolation: the first and the last frame.
- outpaint_central: the central box (middle half of the height and of the width) of every frame; the border is
  generated.
- outpaint_horizontal: the central vertical band (full height, middle half of the width); left and right are
  generated.
- outpaint_vertical: the central horizontal band (full width, middle half of the height); top and bottom are
  generated.
- inpaint_central: everything but the central box.

COMMIT: the visible part is padded to a full video (`condition_video`), the frozen tokenizer turns it into
condition tokens, and masked latent positions inside the condition region (`latent_region`) hold the condition
token instead of [MASK] (`commit_inputs`); the loss is split by what each position held (`commit_loss`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TASKS = (
    "generation",
    "frame_prediction",
    "frame_interpolation",
    "outpaint_central",
    "outpaint_horizontal",
    "outpaint_vertical",
    "inpaint_central",
)
RECONS, REFINE, MASK = 0, 1, 2  # values of `kinds`
GRAY = 0.5


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    """U[0,1) drawn on the generator's device (a CPU generator then works for any target device)."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device)


def cosine_mask_ratio(r: torch.Tensor) -> torch.Tensor:
    """r in [0,1] (any shape) -> cos(pi/2 r): 1 at r=0, 0 at r=1."""
    return torch.cos(0.5 * math.pi * r)


def random_mask(batch: int, num_tokens: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Training mask, bool (B,N): round(cos(pi/2 r) N) positions (clamped to [1, N]) chosen uniformly per sample,
    r ~ U[0,1) per sample. True = masked."""
    if batch < 1:
        raise ValueError(f"batch={batch} is invalid; allowed: >= 1")
    if num_tokens < 1:
        raise ValueError(f"num_tokens={num_tokens} is invalid; allowed: >= 1")
    device = torch.device("cpu") if device is None else torch.device(device)
    ratio = cosine_mask_ratio(_rand((batch,), generator, device))
    count = (ratio * num_tokens).round().long().clamp(1, num_tokens)  # (B,)
    order = _rand((batch, num_tokens), generator, device).argsort(dim=1)  # a random permutation per sample
    first = torch.arange(num_tokens, device=device)[None] < count[:, None]  # (B,N)
    return torch.zeros(batch, num_tokens, dtype=torch.bool, device=device).scatter(1, order, first)


def _middle(size: int) -> tuple[int, int]:
    return size // 4, size - size // 4


def _check_task(task: str, num_frames: int, cond_frames: int) -> None:
    if task not in TASKS:
        raise ValueError(f"task={task!r} is invalid; allowed: {', '.join(TASKS)}")
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 1")
    if task == "frame_prediction" and not 1 <= cond_frames < num_frames:
        raise ValueError(
            f"cond_frames={cond_frames} is invalid for frame_prediction with num_frames={num_frames}; "
            f"allowed: 1 .. {num_frames - 1}"
        )
    if task == "frame_interpolation" and num_frames < 3:
        raise ValueError(f"num_frames={num_frames} is invalid for frame_interpolation; allowed: >= 3")


def pixel_region(task: str, num_frames: int, height: int, width: int, cond_frames: int = 1) -> torch.Tensor:
    """Where the real video is visible to the model, bool (T,H,W)."""
    _check_task(task, num_frames, cond_frames)
    region = torch.zeros(num_frames, height, width, dtype=torch.bool)
    (y0, y1), (x0, x1) = _middle(height), _middle(width)
    if task == "frame_prediction":
        region[:cond_frames] = True
    elif task == "frame_interpolation":
        region[[0, -1]] = True
    elif task == "outpaint_central":
        region[:, y0:y1, x0:x1] = True
    elif task == "outpaint_horizontal":
        region[:, :, x0:x1] = True
    elif task == "outpaint_vertical":
        region[:, y0:y1] = True
    elif task == "inpaint_central":
        region[:] = True
        region[:, y0:y1, x0:x1] = False
    return region


def condition_video(video: torch.Tensor, task: str, cond_frames: int = 1) -> torch.Tensor:
    """The visible part of `video` (B,T,C,H,W) padded to full size -> (B,T,C,H,W); visible pixels are unchanged.

    Frame prediction repeats the last given frame; frame interpolation blends the first and last frame linearly
    in time; outpainting repeats the nearest visible pixel (edge padding); inpainting fills the box with gray.
    For generation nothing is visible and the result is all gray.
    """
    if video.dim() != 5:
        raise ValueError(f"video has shape {tuple(video.shape)}; allowed: (B,T,C,H,W)")
    _, T, _, H, W = video.shape
    _check_task(task, T, cond_frames)
    (y0, y1), (x0, x1) = _middle(H), _middle(W)
    rows = torch.arange(H, device=video.device).clamp(y0, y1 - 1)  # nearest visible row
    cols = torch.arange(W, device=video.device).clamp(x0, x1 - 1)
    if task == "generation":
        return torch.full_like(video, GRAY)
    if task == "frame_prediction":
        index = torch.arange(T, device=video.device).clamp(max=cond_frames - 1)
        return video.index_select(1, index)
    if task == "frame_interpolation":
        w = torch.linspace(0, 1, T, device=video.device, dtype=video.dtype).view(1, T, 1, 1, 1)
        out = torch.lerp(video[:, :1], video[:, -1:], w)
        out[:, 0], out[:, -1] = video[:, 0], video[:, -1]  # exact, whatever lerp rounds to
        return out
    if task == "outpaint_central":
        return video.index_select(3, rows).index_select(4, cols)
    if task == "outpaint_horizontal":
        return video.index_select(4, cols)
    if task == "outpaint_vertical":
        return video.index_select(3, rows)
    out = video.clone()  # inpaint_central
    out[..., y0:y1, x0:x1] = GRAY
    return out


def latent_region(
    task: str,
    num_frames: int,
    height: int,
    width: int,
    spatial_factor: int = 8,
    temporal_factor: int = 4,
    cond_frames: int = 1,
) -> torch.Tensor:
    """Condition region in latent space, bool (t,h,w): True where any frame and pixel a latent covers is visible.

    Latent frame 0 covers video frame 0, latent frame j >= 1 frames tf*(j-1)+1 .. tf*j; latent (y, x) covers
    pixels [s*y, s*(y+1)) x [s*x, s*(x+1)). A clip of tf*k frames is padded by repeating its last frame, as the
    tokenizer pads it, so its last latent frame holds the last real frame. A partly visible latent is condition:
    its condition token encodes the visible part (padded, `condition_video`) and COMMIT refines it, so the model
    is shown every visible frame (with "every", frame interpolation never saw the last frame: the last latent
    group of a 16-frame clip, frames 13-16, is never wholly visible).
    """
    if spatial_factor < 1 or temporal_factor < 1:
        raise ValueError(
            f"spatial_factor={spatial_factor}, temporal_factor={temporal_factor} are invalid; allowed: >= 1"
        )
    padded = num_frames + 1 if num_frames >= temporal_factor and num_frames % temporal_factor == 0 else num_frames
    if num_frames < 1 or (padded - 1) % temporal_factor:
        raise ValueError(
            f"num_frames={num_frames} is invalid; allowed: 1 + {temporal_factor}*k or {temporal_factor}*k (k >= 1, "
            f"padded by one frame), e.g. {1 + 4 * temporal_factor} or {4 * temporal_factor}"
        )
    for name, size in (("height", height), ("width", width)):
        if size < 1 or size % spatial_factor:
            raise ValueError(
                f"{name}={size} is invalid; allowed: a positive multiple of spatial_factor={spatial_factor}"
            )
    region = pixel_region(task, num_frames, height, width, cond_frames)
    if padded > num_frames:  # the padding frame repeats the last frame
        region = torch.cat([region, region[-1:]])
    s, h, w = spatial_factor, height // spatial_factor, width // spatial_factor
    region = region.view(padded, h, s, w, s).any(dim=4).any(dim=2)  # (T,h,w)
    later = region[1:].view(-1, temporal_factor, h, w).any(dim=1)  # (t-1,h,w)
    return torch.cat([region[:1], later])


def commit_inputs(
    tokens: torch.Tensor, cond_tokens: torch.Tensor, region: torch.Tensor, mask: torch.Tensor, mask_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """COMMIT inputs. tokens, cond_tokens (B,N) long; region (B,N) or (N,) bool; mask (B,N) bool.

    Returns inputs (B,N) long (the real token where unmasked, the condition token where masked inside the region,
    mask_id elsewhere) and kinds (B,N) int8 (0 = recons, 1 = refine, 2 = mask).
    """
    if tokens.dim() != 2 or cond_tokens.shape != tokens.shape or mask.shape != tokens.shape:
        raise ValueError(
            f"tokens {tuple(tokens.shape)}, cond_tokens {tuple(cond_tokens.shape)} and mask {tuple(mask.shape)} "
            "must all be (B,N)"
        )
    if region.shape not in (tokens.shape, tokens.shape[1:]):
        raise ValueError(f"region has shape {tuple(region.shape)}; allowed: (B,N) or (N,) = {tuple(tokens.shape)}")
    region, mask = region.bool().expand_as(tokens), mask.bool()
    inputs = torch.where(mask, torch.where(region, cond_tokens, torch.full_like(tokens, mask_id)), tokens)
    kinds = torch.full_like(tokens, RECONS, dtype=torch.int8)
    kinds = kinds.masked_fill(mask & region, REFINE).masked_fill(mask & ~region, MASK)
    return inputs, kinds


def commit_loss(
    logits: torch.Tensor, targets: torch.Tensor, kinds: torch.Tensor, label_smoothing: float = 1e-4
) -> dict[str, torch.Tensor]:
    """Cross-entropy of logits (B,N,K) against the real tokens targets (B,N), with its parts by kinds (B,N).

    "loss" is the mean over all positions; "mask", "refine", "recons" the mean over that kind's positions
    (0 when there are none).
    """
    if logits.dim() != 3 or logits.shape[:2] != targets.shape or kinds.shape != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)}, kinds {tuple(kinds.shape)}; "
            "allowed: (B,N,K), (B,N), (B,N)"
        )
    ce = F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), reduction="none", label_smoothing=label_smoothing
    ).view_as(targets)  # (B,N)
    out = {"loss": ce.mean()}
    for name, kind in (("recons", RECONS), ("refine", REFINE), ("mask", MASK)):
        chosen = kinds == kind
        out[name] = torch.where(chosen, ce, 0.0).sum() / chosen.sum().clamp(min=1)
    return out
