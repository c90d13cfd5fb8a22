"""The MAGVIT transformer's inputs: a frozen tokenizer loaded from a tokenizer run, and the training clips'
token ids, computed once per (tokenizer checkpoint, data set) and cached as int32 shards under
data/cache/magvit_tokens/<key>/ (checksummed, written atomically; an interrupted build resumes)."""

from __future__ import annotations

import hashlib
import json
import logging
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
    """Token ids (N,t,h,w) of a data set's clips, looked up by clip id."""

    def __init__(self, ids: list[str], tokens: torch.Tensor) -> None:
        self.rows = {clip: i for i, clip in enumerate(ids)}
        self.tokens = tokens

    def __call__(self, clip_ids: list[str]) -> torch.Tensor:
        missing = [c for c in clip_ids if c not in self.rows]
        if missing:
            raise KeyError(f"clips {missing[:3]} are not in the token cache")
        return self.tokens[[self.rows[c] for c in clip_ids]].long()


@torch.no_grad()
def build_token_table(tokenizer, identity: str, dataset: Dataset, dataset_key: str, cache_dir: str | Path,
                      batch_size: int = 32, shard_size: int = 2048) -> TokenTable:
    """Tokenize every clip of `dataset` once ({"video", "id"} items) into cached int32 shards, or read them back."""
    key = hashlib.sha256(json.dumps([identity, dataset_key, len(dataset), shard_size]).encode()).hexdigest()[:16]
    shards = ShardFiles(Path(cache_dir) / key)
    shards.write_manifest({"tokenizer": identity, "dataset": dataset_key, "clips": len(dataset)})
    device = next(tokenizer.parameters()).device
    count = (len(dataset) + shard_size - 1) // shard_size
    ids: list[str] = []
    tokens: list[torch.Tensor] = []
    done = [shards.done(i) for i in range(count)]  # each shard checksummed once
    todo = sum(meta is None for meta in done)
    if todo:
        log.info("tokenizing %d clips into %s (%d of %d shards)", len(dataset), shards.folder, todo, count)
    for i in track(range(count), description="tokenizing clips", disable=not todo):
        meta = done[i]
        if meta is None:
            part = torch.utils.data.Subset(dataset, range(i * shard_size, min(len(dataset), (i + 1) * shard_size)))
            shard_ids, shard_tokens = [], []
            with inference_autocast(device):
                for batch in DataLoader(part, batch_size=batch_size, collate_fn=collate):
                    shard_tokens.append(tokenizer.tokenize(batch["video"].to(device)).cpu().to(torch.int32))
                    shard_ids += batch["id"]
            meta = shards.write(i, {"tokens": torch.cat(shard_tokens)}, {"ids": shard_ids})
        ids += meta["ids"]
        tokens.append(load_file(str(shards.shard_path(i)))["tokens"])
    return TokenTable(ids, torch.cat(tokens))
