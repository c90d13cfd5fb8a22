"""What a model family offers the train and evaluate tasks: the one base class every LightningModule of
`conf/model/` derives from. The tasks call these members and never probe a module for what it can do.

A family declares, as class attributes:
- `family`: its name; a loss fits a model when both carry the same one (a loss class's own `family`).
- `needs_backbone`: it walks a frozen backbone's embedding space (the tasks build `backbone=` and serve cached
  embeddings, then call `attach_backbone`).
- `generates_video`: `generate(prompts, num_frames, seed)` makes clips, which the tasks sample during training and
  score after it; a family that does not (a tokenizer, a backbone being trained) gives `after_fit` and `measure`.
- `pinned_hparams`: model keys that a resumed or evaluated run takes from its checkpoint, not from the config
  (MAGVIT's tokenizer file).

The hooks below default to "nothing to do", so a family implements only what it has. Shared helpers: the argument
check (`check_arguments`), the loss-family check (`check_loss`) and AdamW with a warm-up cosine schedule
(`adamw_warmup_cosine`, `planned_steps`, `per_step`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch

from t2vlab.lit.schedules import warmup_cosine


class FamilyModule(pl.LightningModule):
    family: ClassVar[str]
    needs_backbone: ClassVar[bool] = False
    generates_video: ClassVar[bool] = True
    pinned_hparams: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "family", None), str):
            raise TypeError(f"{cls.__name__} must name its family: family = '<name>' (the name its losses carry)")

    # ---------------------------------------------------------------- what the tasks call
    def attach_backbone(self, backbone) -> None:
        """The frozen backbone, built by the tasks when `needs_backbone`; checked against the network here."""
        if self.needs_backbone:
            raise NotImplementedError(f"{type(self).__name__} needs a backbone but does not attach one")

    def check_data(self, datamodule) -> None:
        """Refuse a data set this model cannot train or generate on (a ValueError naming the key), before work."""

    def attach_circles(self, settings) -> None:
        """The data set's circles settings (None for another data set), for a family that renders real clips to
        condition on."""

    def check_generation(self, name: str = "generation") -> None:
        """Check the hyperparameters that steer generation after they were changed; `name` is where they were set
        (`generation`, `evaluation.variants.<variant>`), for the error."""

    @property
    def given_frames(self) -> int:
        """How many leading frames of a generated clip are given (a real clip's), not generated."""
        return 0

    def generate(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """(B, T, 3, H, W) clips in [-1, 1], one per prompt, reproducible from `seed`."""
        raise NotImplementedError(f"{type(self).__name__} does not generate videos (generates_video is False)")

    def after_fit(self, datamodule, out_dir: Path) -> dict:
        """What a family that does not generate videos does when training ends (export, measure); its scores."""
        return self.measure(datamodule, out_dir)

    def measure(self, datamodule, out_dir: Path | None = None) -> dict:
        """A trained model that does not generate videos -> its own scores (`evaluate.py run_dir=`)."""
        raise NotImplementedError(f"{type(self).__name__} neither generates videos nor measures itself")

    # ---------------------------------------------------------------- helpers the families share
    @staticmethod
    def check_arguments(checks: list[tuple[str, bool, str]], values: dict[str, Any], prefix: str = "model") -> None:
        """(key, ok, allowed) per argument: the first that is not ok is a ValueError naming `<prefix>.<key>`, its
        value (from `values`, e.g. the constructor's locals()) and what is allowed."""
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{prefix}.{key}={values[key]} is invalid; allowed: {allowed}")

    def check_loss(self, loss, allowed: str) -> None:
        """The loss must be of this family (`allowed`: the loss options that fit, for the error)."""
        loss_family = getattr(type(loss), "family", None)
        if loss_family != self.family:
            raise ValueError(f"loss {type(loss).__name__} is for the {loss_family!r} family and does not fit a "
                             f"{self.family!r} model; allowed: {allowed}")

    def planned_steps(self) -> int:
        """The run's optimiser steps as the trainer plans them (10,000 when it sets no max_steps)."""
        return max(1, self.trainer.max_steps if self.trainer.max_steps > 0 else 10_000)

    def adamw_warmup_cosine(self, params, lr: float, warmup_steps: int, min_lr_ratio: float, total_steps: int,
                            **adamw: Any) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
        """AdamW and its per-step schedule: a linear warm-up (at most half the run), then a cosine from lr down to
        `min_lr_ratio` x lr at `total_steps`."""
        opt = torch.optim.AdamW(params, lr=lr, **adamw)
        rate = warmup_cosine(min(warmup_steps, total_steps // 2), total_steps, min_lr_ratio)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, rate)

    @staticmethod
    def per_step(opt, scheduler) -> dict:
        """An optimiser and a scheduler stepped every optimiser step, as configure_optimizers returns them."""
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
