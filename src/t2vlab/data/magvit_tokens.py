"""The MAGVIT transformer's inputs: a frozen tokenizer loaded from a tokenizer run, and the training clips'
token ids, computed once per (tokenizer checkpoint, data set, conditional tasks) and cached as int32 shards under
data/cache/magvit_tokens/<key>/ (checksummed, written atomically; an interrupted build resumes).

Besides each clip's own tokens a shard holds, per conditional task, the tokens of the clip's padded visible part
(COMMIT's condition tokens). They are fixed for a clip and a task, and computing them on every training step
costs more than the transformer's own step, so they are computed once with the clip's tokens and reused by every
transformer run on the same tokenizer (an ablation grid included)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from rich.progress import track
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset

from t2vlab.data.datamodule import collate
from t2vlab.hardware import inference_autocast
from t2vlab.resume import newest_checkpoint
from t2vlab.shard_files import ShardFiles, sha256_of

log = logging.getLogger(__name__)
BUILD_HINT = "build one with `python train.py experiment=magvit_tokenizer_circles`"


def find_tokenizer_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, a tokenizer run folder, or a folder of runs (its newest run that has a checkpoint)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        own = p / "checkpoints" / "last.ckpt"
        if own.is_file():
            return own
        runs = {c.parent.parent for c in p.glob("**/checkpoints/last.ckpt")}
        found = [c for c in (newest_checkpoint(r) for r in runs) if c is not None]
        if found:
            return max(found, key=lambda c: c.stat().st_mtime_ns)
    raise ValueError(f"model.tokenizer_ckpt={path} holds no tokenizer checkpoint; {BUILD_HINT}, or pass a tokenizer "
                     "run folder or its checkpoints/last.ckpt")


def load_tokenizer(path: str | Path) -> tuple[torch.nn.Module, str]:
    """The frozen VideoTokenizer of a tokenizer run, rebuilt from the run's config, and its identity (the
    checkpoint's sha256)."""
    ckpt = find_tokenizer_checkpoint(path)
    config = ckpt.resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        raise ValueError(f"model.tokenizer_ckpt={path}: {ckpt} is not inside a run folder written by train.py "
                         f"(no {config}); {BUILD_HINT}")
    run_cfg = OmegaConf.load(config)
    if not str(OmegaConf.select(run_cfg, "model._target_", default="")).endswith("TokenizerModule"):
        raise ValueError(f"model.tokenizer_ckpt={path} is a run of {run_cfg.model._target_}, not a MAGVIT tokenizer; "
                         f"{BUILD_HINT}")
    tokenizer = instantiate(run_cfg.model.tokenizer)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    tokenizer.load_state_dict({k.removeprefix("tokenizer."): v for k, v in state.items() if k.startswith("tokenizer.")})
    return tokenizer.eval().requires_grad_(False), sha256_of(ckpt)[:16]


class TokenTable:
    """Token ids (N,t,h,w) of a data set's clips and of their condition videos per task, looked up by clip id."""

    def __init__(self, ids: list[str], tokens: torch.Tensor, conditions: dict[str, torch.Tensor] | None = None) -> None:
        self.rows = {clip: i for i, clip in enumerate(ids)}
        self.tokens = tokens
        self.conditions = conditions or {}

    def _rows(self, clip_ids: list[str]) -> list[int]:
        missing = [c for c in clip_ids if c not in self.rows]
        if missing:
            raise KeyError(f"clips {missing[:3]} are not in the token cache")
        return [self.rows[c] for c in clip_ids]

    def __call__(self, clip_ids: list[str]) -> torch.Tensor:
        return self.tokens[self._rows(clip_ids)].long()

    def condition(self, task: str, clip_ids: list[str]) -> torch.Tensor:
        """The tokens of the clips' condition videos for `task` (B,t,h,w)."""
        if task not in self.conditions:
            raise KeyError(f"task {task!r} has no condition tokens in the cache; cached: {sorted(self.conditions)}")
        return self.conditions[task][self._rows(clip_ids)].long()


@torch.no_grad()
def build_token_table(tokenizer, identity: str, dataset: Dataset, dataset_key: str, cache_dir: str | Path,
                      conditions: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                      conditions_key: str = "", batch_size: int = 32, shard_size: int = 512) -> TokenTable:
    """Tokenize every clip of `dataset` once ({"video", "id"} items) into cached int32 shards, or read them back.

    `conditions` maps a task to the function that turns clips (B,T,3,H,W) into its condition videos; their tokens
    are cached beside the clips'. `conditions_key` names what those functions depend on (e.g. cond_frames)."""
    conditions = conditions or {}
    tasks = sorted(conditions)
    key = hashlib.sha256(json.dumps([identity, dataset_key, len(dataset), shard_size, tasks, conditions_key]
                                    ).encode()).hexdigest()[:16]
    shards = ShardFiles(Path(cache_dir) / key)
    shards.write_manifest({"tokenizer": identity, "dataset": dataset_key, "clips": len(dataset),
                           "condition_tasks": tasks, "conditions_key": conditions_key})
    device = next(tokenizer.parameters()).device
    count = (len(dataset) + shard_size - 1) // shard_size
    names = ["tokens", *(f"condition/{t}" for t in tasks)]
    ids: list[str] = []
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    done = [shards.done(i) for i in range(count)]  # each shard checksummed once
    todo = sum(meta is None for meta in done)
    if todo:
        log.info("tokenizing %d clips%s into %s (%d of %d shards)", len(dataset),
                 f" and their condition videos for {len(tasks)} tasks" if tasks else "", shards.folder, todo, count)
    for i in track(range(count), description="tokenizing clips", disable=not todo):
        meta = done[i]
        if meta is None:
            part = torch.utils.data.Subset(dataset, range(i * shard_size, min(len(dataset), (i + 1) * shard_size)))
            shard_ids, shard = [], {n: [] for n in names}
            with inference_autocast(device):
                for batch in DataLoader(part, batch_size=batch_size, collate_fn=collate):
                    video = batch["video"].to(device)
                    shard["tokens"].append(tokenizer.tokenize(video).cpu().to(torch.int32))
                    for t in tasks:
                        shard[f"condition/{t}"].append(tokenizer.tokenize(conditions[t](video)).cpu().to(torch.int32))
                    shard_ids += batch["id"]
            meta = shards.write(i, {n: torch.cat(v) for n, v in shard.items()}, {"ids": shard_ids})
        ids += meta["ids"]
        loaded = load_file(str(shards.shard_path(i)))
        for n in names:
            parts[n].append(loaded[n])
    return TokenTable(ids, torch.cat(parts["tokens"]),
                      {t: torch.cat(parts[f"condition/{t}"]) for t in tasks})
