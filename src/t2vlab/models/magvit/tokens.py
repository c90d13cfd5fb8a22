"""The MAGVIT transformer's inputs: a frozen tokenizer loaded from a tokenizer run, and the training clips'
token ids, computed once per (tokenizer checkpoint, data set) and cached as int32 shards under
data/cache/magvit_tokens/<key>/ (checksummed, written atomically; an interrupted build resumes).

Beside the clips' own tokens, each conditional task has a folder with the tokens of every clip's padded visible
part (COMMIT's condition tokens). They are fixed for a clip and a task, and computing them on every training
step cost more than the transformer's own step, so they are computed once and read back by every transformer
run on the same tokenizer and clips, whatever its task mix (an ablation grid's jobs share them).
"""

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
from t2vlab.runtime.checkpoint_file import load_checkpoint
from t2vlab.runtime.hardware import inference_autocast
from t2vlab.runtime.resume import newest_checkpoint
from t2vlab.runtime.shard_files import ShardFiles, sha256_of

log = logging.getLogger(__name__)


def build_hint(path: str | Path) -> str:
    """How to build the tokenizer a config names: the experiment its output folder is named after (train.py
    writes a run of experiment=X under outputs/X/), else the 16x circles one."""
    name = next((part for part in reversed(Path(path).parts) if part.startswith("magvit_tokenizer")),
                "magvit_tokenizer_circles")
    return f"build one with `python train.py experiment={name}`"


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
    raise ValueError(f"model.tokenizer_ckpt={path} holds no tokenizer checkpoint; {build_hint(path)}, or pass a "
                     "tokenizer run folder or its checkpoints/last.ckpt")


def load_tokenizer(path: str | Path) -> tuple[torch.nn.Module, str]:
    """The frozen VideoTokenizer of a tokenizer run, rebuilt from the run's config, and its identity (the
    checkpoint's sha256)."""
    ckpt = find_tokenizer_checkpoint(path)
    config = ckpt.resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        raise ValueError(f"model.tokenizer_ckpt={path}: {ckpt} is not inside a run folder written by train.py "
                         f"(no {config}); {build_hint(path)}")
    run_cfg = OmegaConf.load(config)
    if not str(OmegaConf.select(run_cfg, "model._target_", default="")).endswith("TokenizerModule"):
        raise ValueError(f"model.tokenizer_ckpt={path} is a run of {run_cfg.model._target_}, not a MAGVIT tokenizer; "
                         f"{build_hint(path)}")
    state = load_checkpoint(ckpt, f"model.tokenizer_ckpt={path}")["state_dict"]
    tokenizer = instantiate(run_cfg.model.tokenizer)
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

    `conditions` maps a task to the function that turns clips (B,T,3,H,W) into its condition videos;
    `conditions_key` names what those functions depend on (e.g. cond_frames). The clips' tokens and each task's
    condition tokens are cached in folders of their own, so runs that train different task mixes on the same
    clips share what they have in common."""
    conditions = conditions or {}
    tasks = sorted(conditions)
    base = [identity, dataset_key, len(dataset), shard_size]
    folders = {None: ShardFiles(Path(cache_dir) / _key(base))}
    folders |= {t: ShardFiles(Path(cache_dir) / _key([*base, t, conditions_key])) for t in tasks}
    for task, shards in folders.items():
        shards.write_manifest({"tokenizer": identity, "dataset": dataset_key, "clips": len(dataset),
                               "tokens": "clips" if task is None else f"condition videos of {task}",
                               **({"conditions_key": conditions_key} if task else {})})
    device = next(tokenizer.parameters()).device
    count = (len(dataset) + shard_size - 1) // shard_size
    done = {t: [shards.done(i) for i in range(count)] for t, shards in folders.items()}  # each checksummed once
    todo = sum(meta is None for metas in done.values() for meta in metas)
    if todo:
        log.info("tokenizing %d clips%s into %s (%d of %d shards)", len(dataset),
                 f" and their condition videos for {', '.join(tasks)}" if tasks else "", Path(cache_dir), todo,
                 count * len(folders))
    ids: list[str] = []
    parts: dict[str | None, list[torch.Tensor]] = {t: [] for t in folders}
    for i in track(range(count), description="tokenizing clips", disable=not todo):
        missing = [t for t in folders if done[t][i] is None]
        if missing:
            part = torch.utils.data.Subset(dataset, range(i * shard_size, min(len(dataset), (i + 1) * shard_size)))
            shard_ids, shard = [], {t: [] for t in missing}
            # a DataLoader draws its base seed from the global generator: forked, so that a run's random stream
            # is the same whether its tokens were cached already or not
            with inference_autocast(device), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for batch in DataLoader(part, batch_size=batch_size, collate_fn=collate):
                    video = batch["video"].to(device)
                    for t in missing:
                        shown = video if t is None else conditions[t](video)
                        shard[t].append(tokenizer.tokenize(shown).cpu().to(torch.int32))
                    shard_ids += batch["id"]
            for t in missing:
                done[t][i] = folders[t].write(i, {"tokens": torch.cat(shard[t])}, {"ids": shard_ids})
        ids += done[None][i]["ids"]
        for t, shards in folders.items():
            if done[t][i]["ids"] != done[None][i]["ids"]:
                raise RuntimeError(f"{shards.folder}: shard {i} holds other clips than {folders[None].folder}; "
                                   "delete both folders to rebuild them")
            parts[t].append(load_file(str(shards.shard_path(i)))["tokens"])
    return TokenTable(ids, torch.cat(parts[None]), {t: torch.cat(parts[t]) for t in tasks})


def _key(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
