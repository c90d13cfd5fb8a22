"""From decoded frames to the clip a dataset serves: frame sampling, centre-square crop, resize, filters.

Sampling (`VideoSettings.sampling`):
  first    the first num_frames frames
  uniform  num_frames frames spread evenly over the whole clip
  stride   every `stride`-th frame from the first (num_frames of them, or all with num_frames=null)
  fps      the clip resampled to `fps` frames per second from its own rate (num_frames of them, or all)
A clip with fewer frames than that needs (or than `min_frames`), or whose short side is below `min_side`,
is skipped with that reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from t2vlab.data.video_decode import DecodedVideo

SAMPLINGS = ("first", "uniform", "stride", "fps")


class SkippedClip(Exception):
    """A decodable clip the settings leave out (too short, too small); the message is the reason."""


@dataclass
class VideoSettings:
    """Everything that changes the served pixels; its hash is part of the preprocessing cache's key."""

    num_frames: int | None = 16  # None: every sampled frame (variable length; the Splitter's embedding cache)
    sampling: str = "first"
    stride: int = 1
    fps: float | None = None
    max_frames: int | None = None  # with num_frames=None: keep at most this many
    image_size: int = 256
    crop_fraction: float = 1.0  # the centred square's side as a fraction of the short side
    min_frames: int = 1
    min_side: int = 0  # pixels, of the source video

    def __post_init__(self) -> None:
        checks = [
            ("num_frames", self.num_frames is None or self.num_frames >= 1, "null or >= 1"),
            ("sampling", self.sampling in SAMPLINGS, ", ".join(SAMPLINGS)),
            ("stride", self.stride >= 1, ">= 1"),
            ("fps", (self.fps is not None and self.fps > 0) if self.sampling == "fps" else True,
             "> 0 (sampling=fps needs it)"),
            ("max_frames", self.max_frames is None or self.max_frames >= 1, "null or >= 1"),
            ("image_size", self.image_size >= 8, ">= 8"),
            ("crop_fraction", 0 < self.crop_fraction <= 1, "(0, 1]"),
            ("min_frames", self.min_frames >= 1, ">= 1"),
            ("min_side", self.min_side >= 0, ">= 0"),
        ]
        if self.sampling == "uniform" and self.num_frames is None:
            raise ValueError("dataset.settings.num_frames=null is invalid with sampling=uniform; allowed: >= 1")
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"dataset.settings.{key}={getattr(self, key)!r} is invalid; allowed: {allowed}")

    def frames_needed(self) -> int | None:
        """How many leading source frames sampling and filters read; None: the whole clip."""
        if self.num_frames is None or self.sampling in ("uniform", "fps"):
            return None
        step = self.stride if self.sampling == "stride" else 1
        return max((self.num_frames - 1) * step + 1, self.min_frames)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def center_square_crop(frames: torch.Tensor, fraction: float = 1.0) -> torch.Tensor:
    """frames (N,C,H,W) -> the centred square whose side is `fraction` of the short side."""
    if not 0 < fraction <= 1:
        raise ValueError(f"crop fraction={fraction} is invalid; allowed: (0, 1]")
    H, W = frames.shape[-2:]
    side = max(1, round(min(H, W) * fraction))
    top, left = (H - side) // 2, (W - side) // 2
    return frames[..., top : top + side, left : left + side]


def sample_indices(length: int, native_fps: float, s: VideoSettings) -> np.ndarray:
    """Indices into a clip of `length` frames at `native_fps`; SkippedClip when it is too short."""
    if s.sampling == "uniform":
        if length < s.num_frames:
            raise SkippedClip(f"too short: {length} frames < num_frames={s.num_frames}")
        return np.linspace(0, length - 1, s.num_frames).round().astype(int)
    if s.sampling == "fps":
        step = native_fps / s.fps  # source frames per output frame
        idx = np.floor(np.arange(0, length, step)).astype(int) if step > 0 else np.arange(length)
    else:
        idx = np.arange(0, length, s.stride if s.sampling == "stride" else 1)
    want = s.num_frames if s.num_frames is not None else min(len(idx), s.max_frames or len(idx))
    if len(idx) < want:
        raise SkippedClip(f"too short: {len(idx)} sampled frames < num_frames={s.num_frames}")
    return idx[:want]


def crop_and_resize(frames: np.ndarray, crop_fraction: float, size: int) -> np.ndarray:
    """(T,H,W,3) uint8 -> the centred square of crop_fraction x the short side, resized to (T,size,size,3)."""
    x = center_square_crop(torch.from_numpy(frames).permute(0, 3, 1, 2), crop_fraction).float()
    side = x.shape[-1]
    if side != size:  # antialias: a plain bilinear downscale aliases the fine texture of real frames
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def preprocess(video: DecodedVideo, s: VideoSettings) -> np.ndarray:
    """Decoded frames -> the served clip (T,size,size,3) uint8, or SkippedClip with the reason."""
    T, H, W, _ = video.frames.shape
    if min(H, W) < s.min_side:
        raise SkippedClip(f"too small: {W}x{H} < min_side={s.min_side}")
    if T < s.min_frames:
        raise SkippedClip(f"too short: {T} frames < min_frames={s.min_frames}")
    return crop_and_resize(video.frames[sample_indices(T, video.fps, s)], s.crop_fraction, s.image_size)

