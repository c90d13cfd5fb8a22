"""Generate videos for a prompt list with any family's `generate`, and write them with a manifest."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from t2vlab.data.video_decode import DamagedVideo
from t2vlab.data.video_io import VIDEO_SUFFIXES, read_video, write_video

log = logging.getLogger(__name__)


@torch.no_grad()
def sample(module, prompts: list[str], clips_per_prompt: int, num_frames: int, seed: int,
           batch_size: int = 64) -> tuple[torch.Tensor, list[str]]:
    """K clips per prompt -> (videos (N, T, C, H, W) in [0, 1], their prompts). Deterministic for a seed."""
    if clips_per_prompt < 1:
        raise ValueError(f"clips_per_prompt={clips_per_prompt} is invalid; allowed: >= 1")
    if num_frames < 2:
        raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 2")
    texts = [p for p in prompts for _ in range(clips_per_prompt)]
    chunks = [module.generate(texts[i:i + batch_size], num_frames=num_frames, seed=seed + i).float().cpu()
              for i in range(0, len(texts), batch_size)]
    return torch.cat(chunks), texts


def slug(prompt: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in prompt.lower()).strip("_")


def write_samples(videos: torch.Tensor, prompts: list[str], out_dir: str | Path, fps: int = 5,
                  fields: dict | None = None, heldout: Iterable[str] = (),
                  manifest: str | Path | None = None) -> list[dict]:
    """One GIF per clip under out_dir; one JSON line per clip appended to `manifest` (default
    out_dir/manifest.jsonl) as {"prompt", "path" (relative to the manifest), "heldout", "num_frames", ...fields}."""
    out_dir = Path(out_dir)
    manifest = Path(manifest) if manifest else out_dir / "manifest.jsonl"
    heldout = set(heldout)
    counts: dict[str, int] = {}
    rows = []
    for video, prompt in zip(videos, prompts, strict=True):
        k = counts[prompt] = counts.get(prompt, -1) + 1
        path = write_video(video, out_dir / f"{slug(prompt)}_{k:02d}.gif", fps=fps)
        rows.append({"prompt": prompt, "path": os.path.relpath(path, manifest.parent),
                     "heldout": prompt in heldout, "index": k, "num_frames": len(video), **(fields or {})})
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest, "a") as f:  # one write per call: a crash loses at most this call's lines
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())
    return rows


def read_manifest(source: str | Path, key: str = "videos") -> tuple[Path, list[dict]]:
    """A folder holding manifest.jsonl (or the file itself) -> (the manifest's folder, its rows).

    Each row needs "prompt" and "path" (relative to the manifest); other fields ("id", "heldout", ...) pass
    through. Videos from any outside system can be scored once they have such a manifest.
    """
    source = Path(source)
    manifest = source / "manifest.jsonl" if source.is_dir() else source
    if not manifest.is_file():
        raise ValueError(f"{key}={source} is invalid; allowed: a folder with manifest.jsonl, one JSON object "
                         'per line: {"prompt": ..., "path": <video relative to the manifest>}')
    rows = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not {"prompt", "path"} <= row.keys():
            raise ValueError(f"{manifest} line {number} is invalid: {line[:80]!r}; allowed: an object with "
                             '"prompt" and "path"')
        if not (manifest.parent / row["path"]).is_file():
            raise ValueError(f"{manifest} line {number} names {row['path']}, which does not exist")
        rows.append(row)
    if not rows:
        raise ValueError(f"{manifest} lists no videos")
    return manifest.parent, rows


def read_listed_videos(folder: Path, rows: list[dict], key: str = "videos") -> tuple[list[dict], list, list[dict]]:
    """The videos a manifest lists -> (the rows that could be read, their videos, the skipped ones).

    A damaged video (cut short, overwritten, not what its suffix says, or fewer frames than its line's
    "num_frames") is left out and listed as {"file", "reason"}; the others are scored. None readable: ValueError
    naming the folder.
    """
    kept, videos, skipped = [], [], []
    for row in rows:
        expected = row.get("num_frames")
        try:
            video = read_video(folder / row["path"], expected)
            if isinstance(expected, int) and len(video) < expected:  # Pillow ends a GIF early at a damaged block
                raise DamagedVideo(f"damaged: decoded {len(video)} of the {expected} frames its manifest line lists")
        except DamagedVideo as e:
            log.warning("%s skipped: %s", folder / row["path"], e)
            skipped.append({"file": row["path"], "reason": str(e)})
            continue
        kept.append(row)
        videos.append(video)
    if not videos:
        first = skipped[0]
        raise ValueError(f"{key}={folder}: none of its {len(rows)} videos can be read ({first['file']}: "
                         f"{first['reason']}{', ...' if len(skipped) > 1 else ''}); allowed: a folder whose manifest "
                         f"lists at least one readable {', '.join(VIDEO_SUFFIXES)} file")
    return kept, videos, skipped
