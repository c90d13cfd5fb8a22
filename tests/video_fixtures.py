"""Small data sets in the published TGIF and MSR-VTT formats, generated on the spot: real MP4s and GIFs of a
moving square, plus the broken files real web data contains (cut, overwritten in the middle, not a video)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image


def moving_square(frames: int = 12, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """(T,H,W,3) uint8: a white square crossing a dark frame with a red centre column (to check the crop)."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 40, (frames, height, width, 3), dtype=np.uint8)  # noise: real-sized MP4 streams
    video[:, :, width // 2 - 1 : width // 2 + 1, 0] = 255
    for t in range(frames):
        x = 4 + t * (width - 16) // max(1, frames - 1)
        video[t, height // 2 - 4 : height // 2 + 4, x : x + 8] = 255
    return video


def write_mp4(path: Path, video: np.ndarray, fps: int = 10) -> Path:
    iio.imwrite(path, video, extension=".mp4", fps=fps, codec="libx264", macro_block_size=1)
    return path


def gif_bytes(video: np.ndarray, duration_ms: int = 100) -> bytes:
    frames = [Image.fromarray(f) for f in video]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return buf.getvalue()


def damage_middle(path: Path) -> Path:
    """Overwrite 1 kB a third into the file with zeros: the container opens, the stream does not decode
    through."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 3
    data[mid : mid + 1000] = bytes(1000)
    path.write_bytes(bytes(data))
    return path


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def msrvtt_fixture(root: Path, zipped: bool = False) -> dict:
    """videos video0..video5 (video4 damaged in the middle, video5 not a video), splits train x4 / test x2,
    20 captions each in shuffled sen_id order as in the release -> paths of annotations and videos."""
    folder = root / "videos"
    folder.mkdir(parents=True)
    splits = ["train", "train", "train", "test", "train", "test"]
    for i in range(6):
        write_mp4(folder / f"video{i}.mp4", moving_square(12 + i, seed=i))
    damage_middle(folder / "video4.mp4")
    (folder / "video5.mp4").write_bytes(b"<html>not a video</html>" * 40)
    sentences = [{"caption": f"clip {i} caption {k}", "video_id": f"video{i}", "sen_id": 20 * i + k}
                 for i in range(6) for k in range(20)]
    sentences = sentences[::-1]  # the release is not in sen_id order
    annotations = root / "videodatainfo.json"
    annotations.write_text(json.dumps({
        "info": {"year": 2016},
        "videos": [{"video_id": f"video{i}", "split": s, "id": i, "category": 0, "url": "x"}
                   for i, s in enumerate(splits)],
        "sentences": sentences}))
    videos = folder
    if zipped:
        videos = root / "MSRVTT.zip"
        with zipfile.ZipFile(videos, "w") as z:
            for p in sorted(folder.iterdir()):
                z.write(p, f"MSRVTT/videos/all/{p.name}")
    return {"annotations": annotations, "videos": videos}
