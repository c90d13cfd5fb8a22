"""Lightning callback: the training seconds of a whole run, across stops and resumes.

A checkpoint carries the seconds trained up to it, so a run continued from it (`ckpt_path=...`) reports the time
of every launch that led to its weights, not only the last one's. Time spent after the checkpoint a resume starts
from (steps redone after a crash) is not counted: the figure is what it took to reach the final weights.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl


class TrainingClock(pl.Callback):
    def __init__(self) -> None:
        self.before = 0.0  # seconds trained by the launches before this one (from the checkpoint)
        self.restored = False  # whether the resumed checkpoint carried them (older checkpoints do not)
        self._started: float | None = None

    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._started = time.perf_counter()

    def this_launch(self) -> float:
        return 0.0 if self._started is None else time.perf_counter() - self._started

    def state_dict(self) -> dict:
        return {"seconds": self.before + self.this_launch()}

    def load_state_dict(self, state: dict) -> None:
        self.before, self.restored = float(state["seconds"]), True
