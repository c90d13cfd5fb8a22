"""LightningDataModule over any dataset whose items are {"video", "text", "id"}."""

from __future__ import annotations

from typing import Annotated

import pytorch_lightning as pl
import torch
from annotated_types import Ge
from torch.utils.data import DataLoader, Dataset

from t2vlab.data.circles import CirclesDataset, CirclesSettings, check_prompts
from t2vlab.data.resumable_loader import training_loader
from t2vlab.runtime.config_schema import KwargsOf
from t2vlab.text.word_tokenizer import split_words


class FramesView(Dataset):
    """Each frame of each clip as a one-frame clip: the write-up trained on shuffled single frames."""

    def __init__(self, clips: Dataset, num_frames: int) -> None:
        self.clips, self.num_frames = clips, num_frames

    def __len__(self) -> int:
        return len(self.clips) * self.num_frames

    def __getitem__(self, i: int) -> dict:
        item = self.clips[i // self.num_frames]
        t = i % self.num_frames
        return {**item, "video": item["video"][t : t + 1], "id": f"{item['id']}-f{t}"}


def collate(items: list[dict]) -> dict:
    return {"video": torch.stack([x["video"] for x in items]), "text": [x["text"] for x in items],
            "id": [x["id"] for x in items]}


class CirclesDataModule(pl.LightningDataModule):
    def __init__(self, settings: Annotated[dict | None, KwargsOf(CirclesSettings)] = None,
                 holdout_prompts: list[str] | None = None, batch_size: Annotated[int, Ge(1)] = 32,
                 as_frames: bool = False, num_workers: Annotated[int, Ge(0)] = 0,
                 cache_dir: str | None = None) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"dataset.batch_size={batch_size} is invalid; allowed: >= 1")
        self.settings = CirclesSettings(**(settings or {}))
        self.holdout_prompts = list(holdout_prompts or [])
        check_prompts("dataset.holdout_prompts", self.holdout_prompts)  # before training, not at its scoring
        leaked = set(self.holdout_prompts) & set(self.settings.prompts)
        if leaked:
            # a held-out prompt is never trained on
            self.settings.prompts = [p for p in self.settings.prompts if p not in leaked]
        self.batch_size, self.as_frames = batch_size, as_frames
        self.num_workers, self.cache_dir = num_workers, cache_dir
        self.train_set: Dataset | None = None

    @property
    def prompts(self) -> list[str]:
        """The training prompts (held-out ones removed)."""
        return list(self.settings.prompts)

    @property
    def vocab(self) -> list[str]:
        """Every word of the training and held-out prompts: held-out prompts must be encodable."""
        return sorted({w for p in self.prompts + self.holdout_prompts for w in split_words(p)})

    @property
    def frames_per_batch(self) -> int:
        return self.batch_size * (1 if self.as_frames else self.settings.num_frames)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            clips = CirclesDataset(self.settings, cache_dir=self.cache_dir)
            self.train_set = FramesView(clips, self.settings.num_frames) if self.as_frames else clips

    def train_dataloader(self) -> DataLoader:
        return training_loader(self, self.train_set, self.batch_size, num_workers=self.num_workers,
                               collate_fn=collate)
