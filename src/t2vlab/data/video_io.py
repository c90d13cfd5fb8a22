"""Videos on disk: uint8 GIF (and MP4 where ffmpeg is available), written atomically.

In memory a video is float (T, C, H, W) in [0, 1]; conversion happens only here. A GIF is for looking:
its palette is 256 colours, and Pillow merges identical consecutive frames into one longer frame (playback
is unchanged, the frame count is not; read_video expands such frames again from their durations). A frame
of at most 256 colours (real circles) is stored exactly; a frame of more (generated, noisy) gets its palette
from Pillow's fast octree, over 10x quicker than its default median cut, which made writing samples most
of a short run's time, at 3-4 dB lower PSNR. Score from tensors, MP4 or .npy where colours matter.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageSequence

from t2vlab.data.video_decode import DamagedVideo
from t2vlab.runtime.atomic import atomic_path


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] -> (T, H, W, C) uint8."""
    if video.ndim != 4 or video.shape[1] not in (1, 3):
        raise ValueError(f"expected a video of shape (T, C, H, W) with C in (1, 3), got {tuple(video.shape)}")
    frames = video.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 1).cpu().numpy()


GIF_FRAME_MS = "t2vlab frame_ms="


def write_video(video: torch.Tensor, path: str | Path, fps: int = 5) -> Path:
    """Write a GIF (looping) or MP4, by suffix; a crash never leaves a half-written file at `path`."""
    path = Path(path)
    if path.suffix not in (".gif", ".mp4"):
        raise ValueError(f"video path {path} is invalid; allowed suffixes: .gif, .mp4")
    frames = to_uint8(video)
    with atomic_path(path) as tmp:
        if path.suffix == ".gif":
            # the frame time goes in the comment so a reader can undo Pillow's merging of identical frames
            first, *rest = (_gif_frame(frame) for frame in frames)
            first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=1000 / fps, loop=0,
                       comment=f"{GIF_FRAME_MS}{1000 / fps:g}".encode())
        else:
            iio.imwrite(tmp, frames, extension=".mp4", fps=fps, codec="libx264", macro_block_size=1)
    return path


def _gif_frame(frame: np.ndarray) -> Image.Image:
    """(H, W, C) uint8 -> a frame Pillow saves in a GIF as it is: RGB with at most 256 colours (Pillow's exact
    palette), otherwise quantised to 256 colours by the fast octree."""
    image = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
    if image.mode == "RGB" and image.getcolors(256) is None:
        return image.quantize(256, method=Image.Quantize.FASTOCTREE)
    return image


VIDEO_SUFFIXES = (".gif", ".mp4", ".npy")


def _gif_repeats(path: Path, num_frames: int | None) -> np.ndarray | None:
    """How many video frames each stored GIF frame stands for, from the frames' display durations."""
    with Image.open(path) as im:
        comment = im.info.get("comment", b"").decode(errors="ignore")
        durations = [frame.info.get("duration", 0) for frame in ImageSequence.Iterator(im)]
    if not durations or min(durations) <= 0:
        return None
    if comment.startswith(GIF_FRAME_MS):
        base = float(comment.removeprefix(GIF_FRAME_MS))
    else:
        base = sum(durations) / num_frames if num_frames else min(durations)
    return np.maximum(1, np.round(np.array(durations) / base)).astype(int)


def read_video(path: str | Path, num_frames: int | None = None) -> torch.Tensor:
    """A GIF, MP4 or .npy (T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 1].

    A GIF written here records its frame time, so its frame count comes back exact; for other GIFs pass
    `num_frames` where known, else the shortest stored frame is taken as one frame. A file that cannot be decoded
    (cut short, overwritten, not what its suffix says) raises DamagedVideo with the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise DamagedVideo("empty file")
    try:
        frames = _decode(path, num_frames)
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # how Pillow, ffmpeg and NumPy say damaged
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kind = path.suffix.lstrip(".").upper()
        raise DamagedVideo(f"undecodable {kind}: {first.replace(str(path), path.name)}") from None
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path} holds an array of shape {frames.shape} and dtype {frames.dtype}; allowed: "
                         "(T, H, W, 3) uint8")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255


def _decode(path: Path, num_frames: int | None) -> np.ndarray:
    if path.suffix == ".npy":
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # else np.load reads it as a pickle and says so
                raise ValueError("no NumPy header")
        return np.load(path, allow_pickle=False)
    repeats = _gif_repeats(path, num_frames) if path.suffix == ".gif" else None  # Pillow first: clearer errors
    frames = iio.imread(path, index=None)
    if frames.ndim == 3:  # a single frame
        frames = frames[None]
    frames = frames[..., :3]
    if repeats is not None and len(repeats) == len(frames):
        frames = np.repeat(frames, repeats, axis=0)
    return frames


def read_video_folder(folder: str | Path) -> list[torch.Tensor]:
    """Every GIF, MP4 and .npy directly in `folder`, sorted by name -> list of (T, 3, H, W) in [0, 1]; a damaged
    file is a ValueError naming it (`evaluate.py videos=` skips and lists damaged files instead)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; allowed: a folder of {', '.join(VIDEO_SUFFIXES)} files")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise ValueError(f"{folder} holds no videos; allowed: {', '.join(VIDEO_SUFFIXES)} files")
    videos = []
    for path in paths:  # a whole folder is one input: a damaged file refuses it, naming the file
        try:
            videos.append(read_video(path))
        except DamagedVideo as e:
            raise ValueError(f"{path} is damaged ({e}); allowed: readable {', '.join(VIDEO_SUFFIXES)} files") from None
    return videos
