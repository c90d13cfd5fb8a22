"""What TGIF and MSR-VTT share: captioned clips from the preprocessing cache, served in the framework's
video convention ({"video": float (T,3,H,W) in [0,1], "text", "id"}) by a LightningDataModule that plugs
into every family the way circles does (the Splitter through the embedding cache)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Annotated

import pytorch_lightning as pl
from annotated_types import Ge
from torch.utils.data import DataLoader, Dataset

from t2vlab.data.clip_cache import ClipCache, VideoEntry
from t2vlab.data.datamodule import collate
from t2vlab.data.resumable_loader import training_loader
from t2vlab.data.video_preprocess import VideoSettings
from t2vlab.text.word_tokenizer import split_words

log = logging.getLogger(__name__)

CAPTION_CHOICES = ("all", "first", "random")


class CaptionedClips(Dataset):
    """One item per (clip, caption): every caption (`all`), the first, or one drawn per clip with `seed`."""

    def __init__(self, cache: ClipCache, captions: dict[str, list[str]], choice: str = "all", seed: int = 0) -> None:
        if choice not in CAPTION_CHOICES:
            raise ValueError(f"dataset.captions={choice} is invalid; allowed: {', '.join(CAPTION_CHOICES)}")
        rng = random.Random(seed)
        self.cache, self.items = cache, []
        for k, (_, _, clip_id) in enumerate(cache.index):
            texts = captions.get(clip_id) or []
            if not texts:
                continue
            chosen = texts if choice == "all" else [texts[0]] if choice == "first" else [rng.choice(texts)]
            self.items += [(k, text) for text in chosen]
        self._key = hashlib.sha256(json.dumps([cache.folder.name, choice, seed, self.items]).encode()).hexdigest()[:16]

    def key(self) -> str:
        """Content key for the embedding cache: the clip cache, and which caption goes with which clip."""
        return self._key

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        k, text = self.items[i]
        clip_id = self.cache.index[k][2]
        return {"video": self.cache.clip(k).permute(0, 3, 1, 2).float().div_(255), "text": text, "id": clip_id}


class RealVideoDataModule(pl.LightningDataModule):
    """Subclasses say where the files are (`entries`) and what their captions are (`captions`)."""

    scored_by_motion = False  # train.py's circle-motion scoring does not apply; score with evaluate.py protocols
    name = "videos"

    def __init__(self, settings: dict | None = None, subset: int | None = None, seed: int = 0, captions: str = "all",
                 caption_seed: int = 0, batch_size: Annotated[int, Ge(1)] = 8,
                 num_workers: Annotated[int, Ge(0)] = 0, cache_dir: str = "data/cache",
                 shard_size: int = 64, holdout_prompts: list[str] | None = None, progress: bool = True) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"dataset.batch_size={batch_size} is invalid; allowed: >= 1")
        if captions not in CAPTION_CHOICES:
            raise ValueError(f"dataset.captions={captions} is invalid; allowed: {', '.join(CAPTION_CHOICES)}")
        settings = dict(settings or {})
        # settings.num_videos means what it means for circles (how many clips): debug=fast sets it
        num_videos = settings.pop("num_videos", None)
        subset = num_videos if num_videos is not None else subset
        self.settings = VideoSettings(**settings)
        self.subset, self.seed, self.captions_choice, self.caption_seed = subset, seed, captions, caption_seed
        self.batch_size, self.num_workers = batch_size, num_workers
        self.cache_dir, self.shard_size = cache_dir, shard_size
        self.holdout_prompts, self.progress = list(holdout_prompts or []), progress
        self.as_frames = False
        self.train_set: CaptionedClips | None = None
        self.report: dict | None = None

    # ---------------------------------------------------------------- what subclasses provide
    def entries(self) -> list[VideoEntry]:
        """The source files in decoding order: shuffled with `seed`, as the subset is the first `subset` usable
        ones in this order."""
        raise NotImplementedError

    def captions(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def check(self) -> None:
        """Cheap checks of the files and settings (ValueError naming the bad value), before any long work."""
        self.captions()

    # ---------------------------------------------------------------- the contract circles also follows
    @property
    def prompts(self) -> list[str]:
        """Some training captions (sampled during training)."""
        if self.train_set is None:
            return []
        return list(dict.fromkeys(text for _, text in self.train_set.items))[:8]

    @property
    def vocab(self) -> list[str]:
        words = {w for texts in self.captions().values() for t in texts for w in split_words(t)}
        return sorted(words | {w for p in self.holdout_prompts for w in split_words(p)})

    @property
    def frames_per_batch(self) -> int:
        return self.batch_size * (self.settings.num_frames or 1)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        cache = ClipCache(Path(self.cache_dir) / "videos", self.name, self.entries(), self.settings, self.shard_size,
                          limit=self.subset)
        summary = cache.build(progress=self.progress)
        self.report = summary["report"]
        log.info("%s: %d clips from %s (%d files decoded now, %.1f s); skipped %d: %s", self.name, summary["clips"],
                 summary["folder"], summary["decoded_files"], summary["seconds"], self.report["skipped"],
                 self.report["by_reason"] or "none")
        if not len(cache):
            raise ValueError(f"dataset={self.name}: no usable clips ({self.report['skipped']} skipped: "
                             f"{self.report['by_reason']}); see {summary['folder']}/report.json")
        self.train_set = CaptionedClips(cache, self.captions(), self.captions_choice, self.caption_seed)

    def train_dataloader(self) -> DataLoader:
        if self.settings.num_frames is None:
            raise ValueError("dataset.settings.num_frames=null gives clips of different lengths, which only the "
                             "Splitter's embedding cache takes; allowed for this model: a number of frames")
        return training_loader(self, self.train_set, self.batch_size, num_workers=self.num_workers,
                               collate_fn=collate)
