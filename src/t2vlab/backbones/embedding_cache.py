"""Backbone embeddings of a dataset, computed once and stored as checksummed safetensors shards.

Layout: `<root>/<key>/` holds `manifest.json` (what the key stands for) and, per `shard_size` clips,
`shard-00000.safetensors` with its sidecar `shard-00000.json` (sha256 of the shard, the clip ids, the
prompts). A shard counts as done only when its sidecar exists and the checksum matches, so a run that
was killed resumes at the first missing shard and a damaged shard is recomputed. Both files are written
to a temporary file and renamed into place.

Shard tensors (n clips, T_i frames each, P distinct prompts in the shard):
  frames  (sum T_i, D) float32    every frame's image embedding, clip after clip
  offsets (n+1,) int64            clip i's frames are frames[offsets[i]:offsets[i+1]]
  text_id (n,) int64              row of the clip's prompt in hidden / pooled / prior
  hidden  (P, L, D), pooled (P, D), prior (P, D)   text encoder outputs and the prior's embedding

The prior runs once per prompt with a fixed seed (as the thesis did), so all three text tensors are per
prompt; each distinct prompt is encoded once per run however many clips share it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors.torch import load_file
from torch.utils.data import Dataset

from t2vlab.backbones.base import Backbone
from t2vlab.runtime.shard_files import ShardFiles

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def dataset_key(dataset: Dataset) -> str:
    """A dataset's content key: its `key()` (settings hash) or `settings.key()`."""
    for owner in (dataset, getattr(dataset, "settings", None)):
        key = getattr(owner, "key", None)
        if callable(key):
            return str(key())
    raise TypeError(f"{type(dataset).__name__} has no key() or settings.key(): the embedding cache cannot tell "
                    "its versions apart; give the dataset a key() that hashes every setting that changes its clips")


class EmbeddingCache(ShardFiles):
    """Embeddings of `dataset` (items {"video" (T,3,H,W) in [0,1], "text", "id"}) under `backbone`."""

    def __init__(self, root: str | Path, backbone: Backbone, dataset: Dataset, dataset_name: str = "dataset",
                 prior_seed: int = 0, shard_size: int = 256, text_batch: int = 32) -> None:
        for key, value in (("shard_size", shard_size), ("text_batch", text_batch)):
            if value < 1:
                raise ValueError(f"cache.{key}={value} is invalid; allowed: >= 1")
        self.backbone, self.dataset, self.shard_size, self.text_batch = backbone, dataset, shard_size, text_batch
        self.prior_seed = int(prior_seed)
        self.description = {"format": FORMAT_VERSION, "backbone": backbone.identity, "dataset": dataset_name,
                            "dataset_key": dataset_key(dataset), "clips": len(dataset), "prior_seed": self.prior_seed,
                            "shard_size": shard_size}
        digest = hashlib.sha256(json.dumps(self.description, sort_keys=True).encode()).hexdigest()[:16]
        self.key = f"{backbone.name}-{dataset_name}-{digest}"
        super().__init__(Path(root) / self.key)
        self._text_memo: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @property
    def num_shards(self) -> int:
        return -(-len(self.dataset) // self.shard_size)

    def shard_ok(self, i: int) -> bool:
        return self.done(i) is not None

    def missing_shards(self) -> list[int]:
        return [i for i in range(self.num_shards) if not self.shard_ok(i)]

    def build(self, progress: bool = True) -> dict:
        """Compute every missing or damaged shard; returns counts and throughput of this call."""
        self.write_manifest(self.description)
        start = time.perf_counter()  # the checksum pass counts: a cache hit's time is mostly that
        todo = self.missing_shards()
        damaged = [i for i in todo if self.started(i)]
        if damaged:
            log.warning("embedding cache %s: %d damaged or unfinished shard(s) will be recomputed: %s", self.key,
                        len(damaged), damaged[:10])
        clips_todo = sum(len(self._shard_range(i)) for i in todo)
        columns = (TextColumn("embedding {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("clips"), TimeRemainingColumn())
        with Progress(*columns, disable=not progress or not todo) as bar:
            task = bar.add_task(self.key, total=clips_todo)
            for i in todo:
                self._write_shard(i)
                bar.advance(task, len(self._shard_range(i)))
        seconds = time.perf_counter() - start
        return {"key": self.key, "folder": str(self.folder), "shards": self.num_shards, "computed_shards": len(todo),
                "reused_shards": self.num_shards - len(todo), "repaired_shards": len(damaged),
                "computed_clips": clips_todo, "seconds": seconds,
                "clips_per_s": clips_todo / seconds if clips_todo and seconds > 0 else None}

    def _shard_range(self, i: int) -> range:
        return range(i * self.shard_size, min(len(self.dataset), (i + 1) * self.shard_size))

    def _text(self, prompts: list[str]) -> None:
        new = [p for p in dict.fromkeys(prompts) if p not in self._text_memo]
        for start in range(0, len(new), self.text_batch):
            chunk = new[start : start + self.text_batch]
            hidden, pooled = self.backbone.encode_text(chunk)
            prior = self.backbone.prior(chunk, self.prior_seed)
            for j, p in enumerate(chunk):
                self._text_memo[p] = (hidden[j].cpu(), pooled[j].cpu(), prior[j].cpu())

    def _write_shard(self, i: int) -> None:
        items = [self.dataset[j] for j in self._shard_range(i)]
        prompts = list(dict.fromkeys(x["text"] for x in items))
        self._text(prompts)
        lengths = [len(x["video"]) for x in items]
        frames = torch.cat([x["video"] for x in items])
        embeds = self.backbone.encode_frames(frames).float().cpu()
        row = {p: k for k, p in enumerate(prompts)}
        tensors = {
            "frames": embeds.contiguous(),
            "offsets": torch.tensor([0, *lengths]).cumsum(0),
            "text_id": torch.tensor([row[x["text"]] for x in items]),
            "hidden": torch.stack([self._text_memo[p][0] for p in prompts]).contiguous(),
            "pooled": torch.stack([self._text_memo[p][1] for p in prompts]).contiguous(),
            "prior": torch.stack([self._text_memo[p][2] for p in prompts]).contiguous(),
        }
        self.write(i, tensors, {"clips": [self._shard_range(i).start, self._shard_range(i).stop],
                                "ids": [x["id"] for x in items], "prompts": prompts})

    def load_shard(self, i: int, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors and sidecar of a finished shard (checked against its checksum unless the caller just did)."""
        if verify and not self.shard_ok(i):
            raise RuntimeError(f"embedding cache {self.folder}: shard {i} is missing or damaged; run the cache build "
                               "again to recompute it")
        return load_file(str(self.shard_path(i))), json.loads(self.sidecar_path(i).read_text())
