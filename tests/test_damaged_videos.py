"""Damaged files in an `evaluate.py videos=` folder: each is skipped and listed with its reason (metrics.json, the
printed table), the rest is scored; a folder with nothing readable is refused naming it. Never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import subprocess_env
from entry_points import run_script

from t2vlab.data.circles import CirclesSettings, generate
from t2vlab.data.video_decode import DamagedVideo
from t2vlab.data.video_io import read_video, write_video
from t2vlab.evaluation.sampling import write_samples

ROOT = Path(__file__).resolve().parents[1]
# the metrics that need no weights and no training, so the entry point runs in seconds
QUICK = [f"~protocol.metrics.{name}" for name in ("classifier", "fvd", "lpips", "fid", "clipsim")]


def good_clips(n: int = 3) -> tuple[torch.Tensor, list[str]]:
    videos, texts, _ = generate(CirclesSettings(num_videos=n, num_frames=8, seed=5))
    return torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float() / 255, texts


def _gif_bytes(tmp_path: Path) -> bytes:
    videos, _ = good_clips(1)
    return write_video(videos[0], tmp_path / "source" / "clip.gif").read_bytes()


def _cut_at_a_frame(gif: bytes) -> bytes:
    """Cut where the fifth frame starts: Pillow then decodes four frames and no error."""
    starts = [i for i in range(len(gif)) if gif[i:i + 3] == b"\x21\xf9\x04"]  # each frame's control block
    return gif[:starts[4]]


def _random(n: int) -> bytes:
    return np.random.default_rng(n).bytes(n)


# file name -> (its bytes from a good 8-frame GIF's bytes, what the reason says)
DAMAGED = {
    "cut_in_half.gif": (lambda gif: gif[:len(gif) // 2], "undecodable GIF: image file is truncated"),
    "cut_at_a_frame.gif": (_cut_at_a_frame, "damaged: decoded 4 of the 8 frames its manifest line lists"),
    "overwritten.gif": (lambda gif: _random(len(gif)), "undecodable GIF: cannot identify image file"),
    "random_bytes.mp4": (lambda gif: _random(4000), "undecodable MP4"),
    "random_bytes.npy": (lambda gif: _random(4000), "undecodable NPY: no NumPy header"),
    "empty.gif": (lambda gif: b"", "empty file"),
}


def add_damaged(folder: Path, gif: bytes, names: list[str]) -> None:
    """Write the damaged files and list them in the folder's manifest as 8-frame clips."""
    lines = []
    for name in names:
        (folder / name).write_bytes(DAMAGED[name][0](gif))
        lines.append(json.dumps({"prompt": "circle moving left", "path": name, "num_frames": 8}) + "\n")
    with open(folder / "manifest.jsonl", "a") as f:
        f.write("".join(lines))


@pytest.mark.parametrize("name", [n for n in DAMAGED if n != "cut_at_a_frame.gif"])
def test_read_video_says_why_a_file_is_damaged(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(DAMAGED[name][0](_gif_bytes(tmp_path)))
    with pytest.raises(DamagedVideo) as damaged:
        read_video(path)
    assert DAMAGED[name][1] in str(damaged.value)


def test_a_gif_cut_at_a_frame_boundary_decodes_short_without_error(tmp_path):
    """Why the manifest's num_frames is checked: Pillow ends such a GIF early and says nothing."""
    path = tmp_path / "cut.gif"
    path.write_bytes(_cut_at_a_frame(_gif_bytes(tmp_path)))
    assert len(read_video(path)) == 4


def _evaluate(tmp_path: Path, folder: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "eval"
    result = run_script([ROOT / "evaluate.py", f"videos={folder}", *QUICK, f"hydra.run.dir={out}"], cwd=tmp_path,
                        timeout=120, env=subprocess_env(HYDRA_FULL_ERROR="0", COLUMNS="200"))
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result, out


def test_damaged_videos_are_skipped_listed_and_the_rest_is_scored(tmp_path):
    videos, texts = good_clips(3)
    folder = tmp_path / "videos"
    write_samples(videos, texts, folder)
    add_damaged(folder, _gif_bytes(tmp_path), list(DAMAGED))
    result, out = _evaluate(tmp_path, folder)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "metrics.json").read_text())
    assert [s["file"] for s in report["skipped_videos"]] == list(DAMAGED)
    for skipped in report["skipped_videos"]:
        assert DAMAGED[skipped["file"]][1] in skipped["reason"]
    assert report["metrics"]["motion_acc/seen_all"]["n"] == 3  # the three good clips, all scored
    assert report["metrics"]["psnr"]["n"] == 3
    assert f"skipped {len(DAMAGED)} damaged videos" in result.stdout
    assert all(name in result.stdout for name in DAMAGED)


def test_a_folder_with_nothing_readable_is_refused_naming_it(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    add_damaged(folder, _gif_bytes(tmp_path), ["cut_in_half.gif", "overwritten.gif", "random_bytes.npy"])
    result, out = _evaluate(tmp_path, folder)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: videos={folder}: none of its 3 videos can be read (cut_in_half.gif: ")
    assert last.endswith("allowed: a folder whose manifest lists at least one readable .gif, .mp4, .npy file")
    assert {p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()} <= {".hydra", "evaluate.log"}
