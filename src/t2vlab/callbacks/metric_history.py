"""Every logged scalar, every N optimiser steps, as one JSON line in <run>/history.jsonl.

Learning curves readable offline without W&B (an offline W&B run cannot be read until it is synced). Each
line is flushed on its own, so a crash loses at most the line being written; readers skip a cut last line.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytorch_lightning as pl


class MetricHistory(pl.Callback):
    def __init__(self, path: str, every_n_steps: int = 10) -> None:
        if every_n_steps < 1:
            raise ValueError(f"callbacks.metric_history.every_n_steps={every_n_steps} is invalid; allowed: >= 1")
        self.path, self.every_n_steps = Path(path), every_n_steps
        self._last_step = -1

    def _write(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero or trainer.global_step == self._last_step:
            return
        row = {"step": trainer.global_step, "epoch": trainer.current_epoch}
        for key, value in trainer.callback_metrics.items():
            number = float(value)
            row[key] = number if math.isfinite(number) else str(number)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._write(trainer)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._write(trainer)


def read_history(path: Path) -> list[dict]:
    """The rows of a history.jsonl; a line cut by a crash is skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
