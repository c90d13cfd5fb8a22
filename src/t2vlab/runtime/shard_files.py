"""Numbered safetensors shards with JSON sidecars, as the embedding and preprocessing caches store them.

A shard is done when its sidecar exists and records the shard's sha256 (or records that the shard holds
nothing: then there is no shard file). Both files are written to a temporary file and renamed into place, the old
sidecar removed first, so a crash or kill at any point leaves a shard that is either done or redone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from t2vlab.runtime.atomic import atomic_path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


class ShardFiles:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def write_manifest(self, description: dict) -> None:
        """manifest.json: what the folder's key stands for (written once, when the folder is created)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        if not manifest.is_file():
            with atomic_path(manifest) as tmp:
                tmp.write_text(json.dumps(description, indent=2))

    def shard_path(self, i: int) -> Path:
        return self.folder / f"shard-{i:05d}.safetensors"

    def sidecar_path(self, i: int) -> Path:
        return self.folder / f"shard-{i:05d}.json"

    def done(self, i: int) -> dict | None:
        """The sidecar of a finished shard whose checksum matches; None if it is missing, unfinished or damaged."""
        try:
            meta = json.loads(self.sidecar_path(i).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if meta.get("empty"):
            return meta
        shard = self.shard_path(i)
        return meta if shard.is_file() and meta.get("sha256") == sha256_of(shard) else None

    def started(self, i: int) -> bool:
        """Any file of shard i exists (so a shard that is not done was interrupted or damaged)."""
        return self.shard_path(i).exists() or self.sidecar_path(i).exists()

    def write(self, i: int, tensors: dict[str, torch.Tensor] | None, meta: dict) -> dict:
        """Write shard i (None: nothing to store) and then its sidecar (meta + the shard's sha256)."""
        self.sidecar_path(i).unlink(missing_ok=True)  # the shard is not done until its new sidecar lands
        meta = {**meta, "empty": tensors is None}
        if tensors is not None:
            with atomic_path(self.shard_path(i)) as tmp:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
            meta["sha256"] = sha256_of(self.shard_path(i))
        with atomic_path(self.sidecar_path(i)) as tmp:
            tmp.write_text(json.dumps(meta))
        return meta
