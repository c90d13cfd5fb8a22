"""Preprocessed clips of a real video data set, decoded once and stored as checksummed uint8 shards.

Layout: `<root>/<name>-<key>/` holds `manifest.json` (what the key stands for), per `shard_size` source
files `shard-00000.safetensors` (frames (sum T_i, H, W, 3) uint8 and offsets (n+1,)) with its sidecar
`shard-00000.json` (sha256, kept ids, skipped files with reasons), and `report.json` (the skip report).
The key hashes the data set name, the preprocessing settings, the limit and every source file's id, name
and size, so changed files or settings get a new cache and nothing is decoded twice for the same ones.

A file that is missing, undecodable or damaged is skipped, counted and listed; a run never stops on one
and never keeps a partly decoded clip. Shards are written to a temporary file and renamed into place, and a
shard counts as done only when its sidecar's checksum matches, so a killed build resumes where it stopped.
With `limit`, source files are decoded in the given order until that many clips are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors import safe_open

from t2vlab.data.video_decode import DamagedVideo, decode_video
from t2vlab.data.video_preprocess import SkippedClip, VideoSettings, preprocess
from t2vlab.runtime.atomic import atomic_path
from t2vlab.runtime.shard_files import ShardFiles

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class VideoEntry:
    id: str
    path: Path


def _reason_kind(reason: str) -> str:
    """'too short: 3 frames < ...' -> 'too short' (the report counts reasons by kind)."""
    return reason.split(":", 1)[0]


class ClipCache(ShardFiles):
    def __init__(self, root: str | Path, name: str, entries: list[VideoEntry], settings: VideoSettings,
                 shard_size: int = 64, limit: int | None = None, workers: int | None = None) -> None:
        if shard_size < 1:
            raise ValueError(f"dataset.cache.shard_size={shard_size} is invalid; allowed: >= 1")
        if limit is not None and limit < 1:
            raise ValueError(f"dataset.subset={limit} is invalid; allowed: null (all) or >= 1")
        self.entries, self.settings, self.shard_size, self.limit = list(entries), settings, shard_size, limit
        self.workers = workers or min(4, os.cpu_count() or 1)
        sources = [[e.id, e.path.name, e.path.stat().st_size if e.path.is_file() else -1] for e in self.entries]
        self.description = {"format": FORMAT_VERSION, "dataset": name, "settings": asdict(settings),
                            "limit": limit, "shard_size": shard_size,
                            "sources": hashlib.sha256(json.dumps(sources).encode()).hexdigest(),
                            "num_sources": len(sources)}
        digest = hashlib.sha256(json.dumps(self.description, sort_keys=True).encode()).hexdigest()[:16]
        super().__init__(Path(root) / f"{name}-{digest}")
        self.index: list[tuple[int, int, str]] = []  # (shard, clip within the shard, id), filled by build()
        self._readers: dict[int, object] = {}

    @property
    def num_shards(self) -> int:
        return -(-len(self.entries) // self.shard_size)

    def build(self, progress: bool = True) -> dict:
        """Decode what is not cached yet (until `limit` clips are kept); returns this call's counts."""
        self.write_manifest(self.description)
        start, decoded, kept, metas = time.perf_counter(), 0, 0, []
        columns = (TextColumn("preprocessing {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("files"), TimeRemainingColumn())
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task(self.folder.name, total=len(self.entries))
            for i in range(self.num_shards):
                if self.limit is not None and kept >= self.limit:
                    break
                meta = self.done(i)
                if meta is None:
                    meta = self._write_shard(i)
                    decoded += meta["files"]
                metas.append(meta)
                kept += len(meta["ids"])
                bar.advance(task, meta["files"])
        self.index = [(i, c, clip_id) for i, m in enumerate(metas) for c, clip_id in enumerate(m["ids"])]
        self.index = self.index[: self.limit] if self.limit is not None else self.index
        seconds = time.perf_counter() - start
        report = self._report(metas)
        with atomic_path(self.folder / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=2))
        return {"folder": str(self.folder), "clips": len(self.index), "decoded_files": decoded,
                "reused_shards": len(metas) - sum(1 for m in metas if m.get("new")), "seconds": seconds,
                "clips_per_s": decoded / seconds if decoded and seconds > 0 else None, "report": report}

    @staticmethod
    def _report(metas: list[dict]) -> dict:
        skipped = [s for m in metas for s in m["skipped"]]
        return {"kept": sum(len(m["ids"]) for m in metas), "skipped": len(skipped),
                "by_reason": dict(Counter(_reason_kind(s["reason"]) for s in skipped).most_common()),
                "files": skipped}

    def _process(self, entry: VideoEntry) -> np.ndarray | str:
        try:
            return preprocess(decode_video(entry.path, self.settings.frames_needed()), self.settings)
        except (DamagedVideo, SkippedClip) as e:
            return str(e)
        except Exception as e:  # noqa: BLE001 - one strange file must not end a build over thousands
            return f"undecodable: {type(e).__name__}: {e}"

    def _write_shard(self, i: int) -> dict:
        chunk = self.entries[i * self.shard_size : (i + 1) * self.shard_size]
        with ThreadPoolExecutor(self.workers) as pool:  # ffmpeg runs in subprocesses; Pillow releases the GIL
            results = list(pool.map(self._process, chunk))
        clips = [(e, r) for e, r in zip(chunk, results, strict=True) if isinstance(r, np.ndarray)]
        skipped = [{"id": e.id, "path": str(e.path), "reason": r} for e, r in zip(chunk, results, strict=True)
                   if isinstance(r, str)]
        tensors = None
        if clips:
            tensors = {"frames": torch.from_numpy(np.concatenate([c for _, c in clips])),
                       "offsets": torch.tensor([0, *[len(c) for _, c in clips]]).cumsum(0)}
        meta = self.write(i, tensors, {"ids": [e.id for e, _ in clips], "skipped": skipped, "files": len(chunk)})
        return {**meta, "new": True}

    def __len__(self) -> int:
        return len(self.index)

    def clip(self, k: int) -> torch.Tensor:
        """Clip k of the index as (T,H,W,3) uint8, read from its shard without loading the rest."""
        shard, c, _ = self.index[k]
        reader = self._readers.get(shard)
        if reader is None:  # opened lazily, so each dataloader worker opens its own
            reader = self._readers[shard] = safe_open(str(self.shard_path(shard)), framework="pt")
        start, stop = reader.get_slice("offsets")[c : c + 2].tolist()
        return reader.get_slice("frames")[start:stop]

    def __getstate__(self) -> dict:  # file handles do not cross into worker processes
        return {**self.__dict__, "_readers": {}}
