"""The step every value a run logs is recorded at."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl


def logged_step(trainer: pl.Trainer) -> int:
    """Training batches so far: the step Lightning gives the loggers for `self.log` values.

    `trainer.global_step` counts optimiser steps instead, and the GAN steps two optimisers per batch, so values
    logged at `global_step` (sample rounds, end scores) would sit at twice the x-axis of the losses. Everything
    this project logs itself uses this count, so a run's values share one axis. Lightning keeps it in a private
    attribute of its fit loop; this is the one place that reads it.
    """
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def saved_logged_step(checkpoint: Path) -> int:
    """logged_step as a checkpoint recorded it (0 when there is none): under ddp_spawn the training ran in
    worker processes, whose counters do not come back."""
    if not checkpoint.is_file():
        return 0
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return int(state["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
