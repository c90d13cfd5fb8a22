"""Short content hashes of weight folders, for backbone identities (and so for embedding-cache keys)."""

from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model")
FULL_HASH_LIMIT = 256 * 2**20  # bigger files: size + first and last 4 MiB (a 9 GB model hashes in a second)
EDGE = 4 * 2**20


def file_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(2**20), b""):
                h.update(block)
        else:
            h.update(f.read(EDGE))
            f.seek(size - EDGE)
            h.update(f.read(EDGE))
    return h.hexdigest()


def folder_fingerprint(folder: str | Path, length: int = 12) -> str:
    """Hash of every weight/config file under `folder` (relative names included); hub caches resolve links."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        h.update(str(path.relative_to(folder)).encode())
        h.update(file_fingerprint(path.resolve()).encode())
    return h.hexdigest()[:length]


def settings_hash(settings: dict, length: int = 8) -> str:
    import json

    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:length]
