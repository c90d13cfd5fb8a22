"""Lightning callback: sample a fixed prompt list every N epochs and at the end of training.

Writes GIFs under `dirpath/<epoch folder>/`, appends to `dirpath/manifest.jsonl`, logs the clips (to W&B only)
and, on circles, their motion accuracy to the run's loggers, at the training batch count (`loggers.step`).
Prompts default to the data module's training prompts plus its held-out prompts. On circles, each round's scores
also go to `dirpath/scores.jsonl` with the (optimiser) step and the training seconds so far (wall time since
training started, less the time spent sampling, carried across resumes by the checkpoints): time to quality,
readable offline (the comparison report plots it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from t2vlab.evaluation.circles_scoring import circles_settings
from t2vlab.evaluation.metrics.motion_accuracy import motion_accuracy, summarize
from t2vlab.evaluation.sampling import sample, write_samples
from t2vlab.loggers.step import logged_step


class VideoSampler(pl.Callback):
    def __init__(self, dirpath: str, every_n_epochs: int = 1, clips_per_prompt: int = 2, num_frames: int | None = 10,
                 fps: int = 5, seed: int = 0, prompts: list[str] | None = None) -> None:
        num_frames = 16 if num_frames is None else num_frames  # a data set of clips of any length
        for key, value in (("every_n_epochs", every_n_epochs), ("clips_per_prompt", clips_per_prompt)):
            if value < 1:
                raise ValueError(f"callbacks.video_sampler.{key}={value} is invalid; allowed: >= 1")
        if num_frames < 2:
            raise ValueError(f"callbacks.video_sampler.num_frames={num_frames} is invalid; allowed: >= 2")
        self.dirpath, self.every_n_epochs, self.clips_per_prompt = Path(dirpath), every_n_epochs, clips_per_prompt
        self.num_frames, self.fps, self.seed, self.prompts = num_frames, fps, seed, prompts
        self._last_step = -1
        self._started, self._sampling = time.perf_counter(), 0.0  # reset when training starts
        self._before = 0.0  # training seconds of the launches before a resume

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._started, self._sampling = time.perf_counter(), 0.0

    def _train_seconds(self) -> float:
        return self._before + time.perf_counter() - self._started - self._sampling

    def state_dict(self) -> dict:
        return {"train_seconds": self._train_seconds()}

    def load_state_dict(self, state: dict) -> None:
        self._before = float(state["train_seconds"])

    def _prompts(self, trainer: pl.Trainer) -> tuple[list[str], list[str], list[str]]:
        dm = trainer.datamodule
        train = list(getattr(dm, "prompts", []))
        heldout = list(getattr(dm, "holdout_prompts", []))
        prompts = list(self.prompts) if self.prompts else list(dict.fromkeys(train + heldout))
        return prompts, train, heldout

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.write(trainer, module, f"epoch{trainer.current_epoch:03d}")

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.write(trainer, module, "final")

    def write(self, trainer: pl.Trainer, module: pl.LightningModule, tag: str) -> None:
        if not trainer.is_global_zero or trainer.global_step == self._last_step or trainer.sanity_checking:
            return
        if not module.generates_video:  # e.g. a backbone being trained: nothing to sample
            return
        self._last_step = trainer.global_step
        prompts, train, heldout = self._prompts(trainer)
        if not prompts:
            return
        began = time.perf_counter()
        train_seconds = self._train_seconds()
        was_training = module.training
        module.eval()
        try:
            with trainer.precision_plugin.forward_context():  # sample() runs without gradients
                videos, texts = sample(module, prompts, self.clips_per_prompt, self.num_frames, self.seed)
        finally:
            module.train(was_training)
        folder = self.dirpath / f"{tag}_step{trainer.global_step:06d}"
        rows = write_samples(videos, texts, folder, self.fps, heldout=heldout, manifest=self.dirpath / "manifest.jsonl",
                             fields={"epoch": trainer.current_epoch, "step": trainer.global_step, "tag": tag,
                                     "seed": self.seed})
        try:
            self._log(trainer, videos, texts, rows, train, tag, train_seconds)
        finally:
            self._sampling += time.perf_counter() - began

    def _log(self, trainer, videos, texts, rows, train, tag: str, train_seconds: float) -> None:
        try:  # only circles prompts have a motion scorer
            scores = summarize(motion_accuracy(videos, texts, circles_settings(trainer.datamodule)), train)
        except ValueError:
            scores = {}
        if scores:
            record = {"step": trainer.global_step, "epoch": trainer.current_epoch, "tag": tag,
                      "train_seconds": train_seconds, **scores}
            with open(self.dirpath / "scores.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            for logger in trainer.loggers:
                logger.log_metrics({f"samples/{k}": v for k, v in scores.items()}, step=logged_step(trainer))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):  # the others have no video panel; the GIFs are in the run folder
                first = {}
                for row in rows:  # one clip per prompt keeps the media panel readable
                    first.setdefault(row["prompt"], str(self.dirpath / row["path"]))
                logger.log_video("samples/videos", videos=list(first.values()), step=logged_step(trainer),
                                 caption=list(first), format=["gif"] * len(first))
