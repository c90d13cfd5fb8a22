"""Stop a run whose training losses became NaN or infinite, and say so.

The train task reports such a run as diverged (`train/diverged` in metrics.json) and returns the worst value
for the optimised metric, so a hyper-parameter search records the trial instead of aborting the study.
"""

from __future__ import annotations

import logging
import math

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class DivergenceGuard(pl.Callback):
    def __init__(self, prefix: str = "train/loss") -> None:
        self.prefix = prefix
        self.diverged_at: int | None = None  # the optimiser step at which a loss stopped being finite

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        bad = {k: float(v) for k, v in trainer.callback_metrics.items()
               if k.startswith(self.prefix) and not math.isfinite(float(v))}
        if bad and not self.diverged:
            self.diverged_at = trainer.global_step
            trainer.should_stop = True
            log.warning("training diverged at step %d (%s); stopping", trainer.global_step,
                        ", ".join(f"{k}={v}" for k, v in bad.items()))
