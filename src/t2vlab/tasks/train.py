"""The training task: preflight -> instantiate -> fit -> sample -> score -> metrics.json -> metric."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig

from t2vlab.evaluation import evaluate_circles, print_report
from t2vlab.hardware import inference_autocast
from t2vlab.sampling import write_samples
from t2vlab.tasks.common import (
    build_model,
    close_loggers,
    instantiate,
    instantiate_callbacks,
    instantiate_loggers,
    write_json,
)
from t2vlab.tasks.preflight import check_train_config

log = logging.getLogger(__name__)

# Lightning's advice for automatic optimisation; our GAN steps both optimisers itself
warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


def train(cfg: DictConfig) -> dict:
    check_train_config(cfg)
    out = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule.vocab)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"), cfg)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                      default_root_dir=str(out))
    failed = True
    try:
        start = time.perf_counter()
        resume = {"ckpt_path": cfg.ckpt_path} if cfg.get("ckpt_path") else {}
        trainer.fit(model, datamodule=datamodule, **resume)
        train_seconds = time.perf_counter() - start
        batches = trainer.fit_loop.epoch_loop.total_batch_idx + 1  # this session's batches (not a resume's)
        if trainer.interrupted:
            log.warning("training was interrupted; checkpoints are in %s", out / "checkpoints")
            failed = False
            return {}

        ev = cfg.evaluation
        model.eval()
        with inference_autocast(model.device):
            report = evaluate_circles(model, datamodule.prompts, datamodule.holdout_prompts,
                                      ev.clips_per_prompt, ev.num_frames, ev.seed)
        print_report(report, datamodule.holdout_prompts, title=f"circle motion accuracy ({out})")
        write_samples(report.videos, report.prompts, out / "samples" / "evaluation",
                      heldout=datamodule.holdout_prompts, manifest=out / "samples" / "manifest.jsonl",
                      fields={"tag": "evaluation", "step": trainer.global_step, "seed": ev.seed})
        metrics = {**report.metrics(), "train/seconds": train_seconds, "train/global_step": trainer.global_step,
                   "train/frames_per_second": batches * datamodule.frames_per_batch / train_seconds}
        write_json(out / "metrics.json", metrics)
        for logger in trainer.loggers:
            logger.log_metrics({k: v for k, v in metrics.items()}, step=trainer.global_step)
        failed = False
        return metrics
    finally:
        close_loggers(trainer.loggers, failed=failed)


def optimized_value(metrics: dict, name: str | None) -> float | None:
    if not name:
        return None
    if name not in metrics:
        raise ValueError(f"optimized_metric={name} is invalid; allowed: one of {sorted(metrics)}")
    return float(metrics[name])
