"""The circles clips on disk: one .npz per settings key and a JSON sidecar with its sha256. A cache that is cut
short, has flipped bytes or lost its sidecar (a crash between the two writes) is rebuilt, with a warning."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from t2vlab.runtime.atomic import atomic_path
from t2vlab.runtime.shard_files import sha256_of

log = logging.getLogger(__name__)


def sidecar_of(cache: Path) -> Path:
    return cache.with_suffix(".json")


def save_cache(cache: Path, videos: np.ndarray, texts: list[str], settings: dict) -> None:
    """The clips, then the sidecar (their sha256 and the settings they were drawn with)."""
    sidecar_of(cache).unlink(missing_ok=True)  # the cache counts only once its new sidecar lands
    with atomic_path(cache, suffix=".tmp.npz") as tmp:  # np.savez appends .npz to other names
        np.savez(tmp, videos=videos, texts=np.array(texts))
    with atomic_path(sidecar_of(cache)) as tmp:
        tmp.write_text(json.dumps({"sha256": sha256_of(cache), "settings": settings}, indent=2))


def load_cache(cache: Path) -> tuple[np.ndarray, list[str]] | None:
    """(clips uint8 (N,T,H,W,3), prompts); None when there is no cache, or, with a warning naming the file, when
    it has no readable sidecar, fails its checksum or cannot be read: the caller renders the clips again."""
    if not cache.exists():
        return None
    try:
        expected = json.loads(sidecar_of(cache).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("circles cache %s has no readable checksum sidecar %s; rebuilding it", cache,
                    sidecar_of(cache).name)
        return None
    # hashed as a stream, then read: reading the bytes once into memory would hold the clips twice
    if sha256_of(cache) != expected:
        log.warning("circles cache %s fails its sha256 check (damaged or cut short); rebuilding it", cache)
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            return z["videos"], [str(t) for t in z["texts"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        log.warning("circles cache %s cannot be read (%s); rebuilding it", cache, e)
        return None
