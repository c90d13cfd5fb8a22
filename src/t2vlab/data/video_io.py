"""Videos on disk: uint8 GIF (and MP4 where ffmpeg is available), written atomically.

In memory a video is float (T, C, H, W) in [0, 1]; conversion happens only here. A GIF is for looking:
Pillow merges identical consecutive frames into one longer frame (playback is unchanged, the frame count is
not), and its palette is 256 colours. Score from tensors or MP4, not from GIFs.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from t2vlab.atomic import atomic_path


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] -> (T, H, W, C) uint8."""
    if video.ndim != 4 or video.shape[1] not in (1, 3):
        raise ValueError(f"expected a video of shape (T, C, H, W) with C in (1, 3), got {tuple(video.shape)}")
    frames = video.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 1).cpu().numpy()


def write_video(video: torch.Tensor, path: str | Path, fps: int = 5) -> Path:
    """Write a GIF (looping) or MP4, by suffix; a crash never leaves a half-written file at `path`."""
    path = Path(path)
    if path.suffix not in (".gif", ".mp4"):
        raise ValueError(f"video path {path} is invalid; allowed suffixes: .gif, .mp4")
    frames = to_uint8(video)
    with atomic_path(path) as tmp:
        if path.suffix == ".gif":
            iio.imwrite(tmp, frames, extension=".gif", duration=1000 / fps, loop=0)
        else:
            iio.imwrite(tmp, frames, extension=".mp4", fps=fps, codec="libx264", macro_block_size=1)
    return path


def read_video(path: str | Path) -> torch.Tensor:
    """A GIF or MP4 -> (T, 3, H, W) float in [0, 1]."""
    frames = iio.imread(path, index=None)
    if frames.ndim == 3:  # a single frame
        frames = frames[None]
    frames = frames[..., :3]
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
