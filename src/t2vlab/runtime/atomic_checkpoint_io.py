"""Checkpoint writes that never leave a truncated file: write a temporary file, then rename over the target."""

from __future__ import annotations

from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from t2vlab.runtime.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        with atomic_path(path, suffix=".ckpt.tmp") as tmp:
            torch.save(checkpoint, tmp)
