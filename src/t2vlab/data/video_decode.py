"""Decode a video file from a real data set (GIF with Pillow, MP4 and other containers with the ffmpeg that
imageio-ffmpeg ships) into uint8 frames, refusing damaged files instead of returning half of them.

ffmpeg conceals decoding errors by default (a damaged MP4 decodes to all its frames, some garbage), so it
runs here with `-err_detect explode -xerror`: it stops at the first error, and a clip that yields fewer
frames than its container announces is reported as damaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

GIF_DEFAULT_FPS = 10.0  # a GIF frame without a duration; browsers show those at about this rate


class DamagedVideo(Exception):
    """The file cannot be decoded completely; the message says why (it goes into the skip report)."""


@dataclass
class DecodedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float


def decode_video(path: str | Path, max_frames: int | None = None) -> DecodedVideo:
    """All frames, or the first `max_frames` (the rest is not decoded, nor checked)."""
    path = Path(path)
    if not path.is_file():
        raise DamagedVideo("missing file")
    if path.stat().st_size == 0:
        raise DamagedVideo("empty file")
    return _decode_gif(path, max_frames) if path.suffix.lower() == ".gif" else _decode_ffmpeg(path, max_frames)


def _decode_gif(path: Path, max_frames: int | None) -> DecodedVideo:
    try:
        with Image.open(path) as im:
            if im.format != "GIF":
                raise DamagedVideo(f"not a GIF ({im.format})")
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im):  # Pillow composes each frame with its disposal
                frames.append(np.asarray(frame.convert("RGB")))
                durations.append(frame.info.get("duration") or 0)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except DamagedVideo:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # Pillow's ways of saying truncated or invalid
        raise DamagedVideo(f"undecodable GIF: {e}") from None
    positive = [d for d in durations if d > 0]
    fps = 1000.0 / float(np.median(positive)) if positive else GIF_DEFAULT_FPS
    return DecodedVideo(np.stack(frames), fps)


def _decode_ffmpeg(path: Path, max_frames: int | None) -> DecodedVideo:
    import imageio_ffmpeg  # imported here: its ffmpeg is needed for real videos only, not to train on circles

    limit = ["-frames:v", str(max_frames)] if max_frames is not None else []
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", input_params=["-err_detect", "explode"],
                                            output_params=["-xerror", *limit])
        meta = next(reader)
        width, height = meta["size"]
        raw = [np.frombuffer(chunk, np.uint8) for chunk in reader]
    except (OSError, RuntimeError, StopIteration, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DamagedVideo(f"undecodable: {first}") from None
    fps = float(meta.get("fps") or 0) or 25.0
    expected = round(float(meta.get("duration") or 0) * fps)
    expected = min(expected, max_frames) if max_frames is not None else expected
    if not raw:
        raise DamagedVideo("no frames decoded")
    if expected and len(raw) < expected - 1:  # ffmpeg stopped at an error (-xerror): only part of the clip
        raise DamagedVideo(f"damaged: decoded {len(raw)} of {expected} frames")
    frames = np.stack(raw).reshape(len(raw), height, width, 3)
    return DecodedVideo(frames, fps)
