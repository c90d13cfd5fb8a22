"""Plumbing shared by the frame metrics: check video shapes, pair videos frame by frame, resize, summarise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from t2vlab.evaluation.metrics.result import MetricResult


def check_videos(videos: torch.Tensor, name: str = "videos") -> None:
    if (not isinstance(videos, torch.Tensor) or not videos.is_floating_point() or videos.ndim != 5
            or videos.shape[2] not in (1, 3)):
        shape = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        dtype = getattr(videos, "dtype", "")
        raise ValueError(f"{name} of shape {shape} {dtype} are invalid; allowed: a float tensor (N, T, C, H, W) in "
                         "[0, 1] with C 1 or 3")
    if videos.shape[0] == 0 or videos.shape[1] == 0:
        raise ValueError(f"{name} of shape {tuple(videos.shape)} are empty; allowed: N >= 1 videos of T >= 1 frames")


def paired_videos(generated: torch.Tensor, reference: torch.Tensor, size: int | None) -> tuple[torch.Tensor, ...]:
    """Check that two video sets pair one to one and cut both to their common first min(T_g, T_r) frames.

    Frame sizes may differ only when `size` is set (both sides are resized to size x size anyway).
    """
    check_videos(generated, "generated videos")
    check_videos(reference, "reference videos")
    g, r = generated.shape, reference.shape
    same_frames = g[3:] == r[3:] or size is not None
    if g[0] != r[0] or g[2] != r[2] or not same_frames:
        raise ValueError(f"generated videos {tuple(g)} and reference videos {tuple(r)} do not pair; allowed: the same "
                         "N, C, H and W (T may differ: the common first frames are scored; H and W may differ when "
                         "size is set)")
    frames = min(g[1], r[1])
    return generated[:, :frames], reference[:, :frames]


def resize_frames(frames: torch.Tensor, size: int | None) -> torch.Tensor:
    """(..., C, H, W) -> (..., C, size, size), bilinear without antialiasing (the protocol's resize); None: as is."""
    if size is None or tuple(frames.shape[-2:]) == (size, size):
        return frames.float()
    lead, (c, h, w) = frames.shape[:-3], frames.shape[-3:]
    out = F.interpolate(frames.reshape(-1, c, h, w).float(), size=(size, size), mode="bilinear",
                        align_corners=False, antialias=False)
    return out.reshape(*lead, c, size, size)


def summarise(per_video: torch.Tensor, unit: str, settings: dict) -> MetricResult:
    """Per-video values (N,) -> their mean, the unbiased std over videos and N. The std is None for one video,
    and where it is undefined (PSNR of identical videos is inf)."""
    values = per_video.double()
    std = float(values.std()) if len(values) > 1 else math.nan
    return MetricResult(value=float(values.mean()), n=len(values), std=std if math.isfinite(std) else None,
                        unit=unit, settings=settings)
