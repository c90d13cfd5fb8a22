"""Checkpoints at the end of training: `last.ckpt` when it finishes, `interrupted.ckpt` on Ctrl-C or an error.

ModelCheckpoint saves every N steps, so a run whose length is not a multiple of N would otherwise end
without its final weights. Lightning's OnExceptionCheckpoint also saves on errors, but it turns every
`fit(ckpt_path=None)` into `ckpt_path="last"`, silently resuming whatever is in the folder; this does not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class EndCheckpoint(pl.Callback):
    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.interrupted:
            trainer.save_checkpoint(self.dirpath / "last.ckpt")

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.global_step == 0:
            return  # nothing trained yet
        path = self.dirpath / "interrupted.ckpt"
        trainer.save_checkpoint(path)
        log.warning("saved %s at step %d; resume with ckpt_path=%s", path, trainer.global_step, path)
