"""Cached backbone embeddings served by clip: what the Splitter trains on.

The source datamodule (circles, TGIF, MSR-VTT) provides clips; the backbone embeds them once into the
embedding cache (`t2vlab.backbones.embedding_cache`); this datamodule loads the shards and serves
batches of clips with their frames' embeddings padded to the longest clip in the batch.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from t2vlab.backbones.base import Backbone
from t2vlab.backbones.embedding_cache import EmbeddingCache
from t2vlab.data.resumable_loader import training_loader

log = logging.getLogger(__name__)


class EmbeddingDataset(Dataset):
    """Items: {"frames" (T,D), "hidden" (L,D), "pooled" (D,), "prior" (D,), "text", "id"}."""

    def __init__(self, cache: EmbeddingCache, verify: bool = True) -> None:
        self.frames: list[torch.Tensor] = []
        self.text_rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.row_of: list[int] = []
        self.texts: list[str] = []
        self.ids: list[str] = []
        for i in range(cache.num_shards):
            t, meta = cache.load_shard(i, verify)
            base = len(self.text_rows)
            self.text_rows += list(zip(t["hidden"], t["pooled"], t["prior"], strict=True))
            offsets = t["offsets"].tolist()
            for c in range(len(offsets) - 1):
                self.frames.append(t["frames"][offsets[c] : offsets[c + 1]])
                self.row_of.append(base + int(t["text_id"][c]))
            self.texts += [meta["prompts"][int(k)] for k in t["text_id"]]
            self.ids += meta["ids"]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict:
        hidden, pooled, prior = self.text_rows[self.row_of[i]]
        return {"frames": self.frames[i], "hidden": hidden, "pooled": pooled, "prior": prior,
                "text": self.texts[i], "id": self.ids[i]}


def collate_embeddings(items: list[dict]) -> dict:
    """Frames padded to the longest clip: frames (B,T,D), lengths (B,), frame_mask (B,T) True where real."""
    lengths = torch.tensor([len(x["frames"]) for x in items])
    T, D = int(lengths.max()), items[0]["frames"].shape[-1]
    frames = torch.zeros(len(items), T, D)
    for b, x in enumerate(items):
        frames[b, : len(x["frames"])] = x["frames"]
    return {"frames": frames, "lengths": lengths, "frame_mask": torch.arange(T)[None] < lengths[:, None],
            "hidden": torch.stack([x["hidden"] for x in items]), "pooled": torch.stack([x["pooled"] for x in items]),
            "prior": torch.stack([x["prior"] for x in items]), "text": [x["text"] for x in items],
            "id": [x["id"] for x in items]}


class EmbeddingDataModule(pl.LightningDataModule):
    """Wraps a clip datamodule: its train clips are embedded by `backbone` (once, cached) and served."""

    def __init__(self, source: pl.LightningDataModule, backbone: Backbone, cache_dir: str, dataset_name: str,
                 prior_seed: int = 0, shard_size: int = 256, batch_size: int = 64, num_workers: int = 0,
                 progress: bool = True) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"dataset.batch_size={batch_size} is invalid; allowed: >= 1")
        if getattr(source, "as_frames", False):
            raise ValueError("the embedding cache needs whole clips; set dataset.as_frames=false")
        self.source, self.backbone = source, backbone
        self.cache_dir, self.dataset_name = cache_dir, dataset_name
        self.prior_seed, self.shard_size, self.progress = prior_seed, shard_size, progress
        self.batch_size, self.num_workers = batch_size, num_workers
        self.cache: EmbeddingCache | None = None
        self.train_set: EmbeddingDataset | None = None

    # the source's prompt lists, settings and vocabulary are the run's (sampling and evaluation use them)
    def __getattr__(self, name: str):
        if name != "source" and "source" in self.__dict__:
            return getattr(self.__dict__["source"], name)
        raise AttributeError(name)

    def prepare_data(self) -> None:  # downloads and extractions of the source (TGIF, MSR-VTT)
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.source.setup(stage)
        self.cache = EmbeddingCache(self.cache_dir, self.backbone, self.source.train_set, self.dataset_name,
                                    prior_seed=self.prior_seed, shard_size=self.shard_size)
        summary = self.cache.build(progress=self.progress)
        if summary["computed_shards"]:
            log.info("embedded %d clips in %.1f s (%.1f clips/s) into %s", summary["computed_clips"],
                     summary["seconds"], summary["clips_per_s"] or 0.0, summary["folder"])
        self.train_set = EmbeddingDataset(self.cache, verify=False)  # build() has just checked every shard

    def train_dataloader(self) -> DataLoader:
        return training_loader(self, self.train_set, self.batch_size, num_workers=self.num_workers,
                               collate_fn=collate_embeddings)
