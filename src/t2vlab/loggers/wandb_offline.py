"""Read an offline W&B run back from its transaction log, `<run folder>/run-<id>.wandb`: what `wandb sync` would
upload. wandb 0.31 has no Python reader for it (its core is in Go), so this reads the format directly: a 7-byte
header (":W&B", magic 0xBEE1, version), then LevelDB-log blocks of 32 KiB whose chunks (CRC32, length, type:
full / first / middle / last) hold one protobuf `Record` each."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

_BLOCK, _CHUNK_HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[pb.Record]:
    data = Path(path).read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path} is not a W&B transaction log"
    pos, pending = 7, b""
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _CHUNK_HEADER])
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + _CHUNK_HEADER:pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if kind == _FULL:
            raw = chunk
        elif kind == _FIRST:
            pending = chunk
            continue
        elif kind == _MIDDLE:
            pending += chunk
            continue
        else:
            raw, pending = pending + chunk, b""
        record = pb.Record()
        record.ParseFromString(raw)
        yield record


@dataclass
class OfflineRun:
    history: list[dict] = field(default_factory=list)  # one dict per wandb.log call, nested keys as nested dicts
    config: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    artifacts: list = field(default_factory=list)  # pb.ArtifactRecord: name, manifest.contents (path, local_path)


def _put(target: dict, item) -> None:
    keys = list(item.nested_key) or [item.key]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = json.loads(item.value_json)


def read_offline_run(folder: Path) -> OfflineRun:
    """The run in `folder` (an offline-run-* folder); a resumed run's later folders are separate runs here."""
    (log,) = Path(folder).glob("*.wandb")
    run = OfflineRun()
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row: dict = {}
            for item in record.history.item:
                _put(row, item)
            run.history.append(row)
        elif kind == "run":
            run.tags = list(record.run.tags)
            for item in record.run.config.update:
                _put(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _put(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _put(run.summary, item)
        elif kind == "artifact":
            run.artifacts.append(record.artifact)
    return run
