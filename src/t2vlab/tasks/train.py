"""The training task: preflight -> instantiate -> fit -> sample -> score -> metrics.json -> metric."""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from t2vlab.callbacks.divergence_guard import DivergenceGuard
from t2vlab.callbacks.rng_state import RNGState
from t2vlab.callbacks.training_clock import TrainingClock
from t2vlab.evaluation.circles_scoring import circles_settings, evaluate_circles, print_report
from t2vlab.evaluation.reports import print_scores
from t2vlab.evaluation.sampling import write_samples
from t2vlab.loggers.clips_table import clip_columns, log_clips_table
from t2vlab.loggers.labels import log_run_labels
from t2vlab.loggers.scores import log_scores
from t2vlab.loggers.step import logged_step, saved_logged_step
from t2vlab.runtime.checkpoint_file import load_checkpoint
from t2vlab.runtime.hardware import inference_autocast
from t2vlab.runtime.resume import finished_metrics, resolve_checkpoint, wandb_id_to_resume
from t2vlab.tasks.common import (
    build_data_and_backbone,
    build_model,
    close_loggers,
    dataset_name,
    generation_settings,
    instantiate,
    instantiate_callbacks,
    instantiate_loggers,
    name_the_run,
    pin_to_checkpoint,
    write_json,
)
from t2vlab.tasks.preflight import BadInput, check_train_config
from t2vlab.tasks.run import in_multirun

log = logging.getLogger(__name__)

# Lightning's advice for automatic optimisation; our GAN steps both optimisers itself
warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


class BatchCounter(pl.Callback):
    """Batches trained in this process (a resumed run's earlier batches are not counted)."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, *args) -> None:
        self.batches += 1


def train(cfg: DictConfig) -> dict:
    out = Path(cfg.paths.output_dir)
    cfg = name_the_run(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    try:  # everything before the first step: a ValueError here is a bad config value
        check_train_config(cfg)
        experiment_dir = Path(cfg.paths.output_root) / (cfg.get("experiment_name") or cfg.task_name)
        if cfg.get("ckpt_path") == "last":
            done = finished_metrics(out, OmegaConf.select(cfg, "trainer.max_steps"))
            if done is not None:  # a re-launched sweep: this job had already run to its end
                log.info("%s already finished (%s, step %d): left as it is; delete it, or its metrics.json, to "
                         "run it again", out, out / "metrics.json", done["train/global_step"])
                return done
        ckpt = resolve_checkpoint(cfg.get("ckpt_path"), experiment_dir, out, in_sweep=in_multirun())
        if ckpt is not None:  # a resumed run keeps what its checkpoint was built on (e.g. MAGVIT's tokenizer)
            cfg = pin_to_checkpoint(cfg, load_checkpoint(ckpt, f"ckpt_path={cfg.get('ckpt_path')}"))
        datamodule, backbone = build_data_and_backbone(cfg)
        model = build_model(cfg, datamodule.vocab, backbone, datamodule)
        if callable(getattr(datamodule, "check", None)):  # a real data set's files, before any long work
            datamodule.check()
        variants = _generation_variants(cfg, model)
        scored = getattr(datamodule, "scored_by_motion", True)
        if variants and not scored:  # the variants come with the experiment; they have nothing to score here
            log.info("evaluation.variants skipped: dataset=%s is not scored after training", dataset_name(cfg))
            variants = {}
        callbacks = instantiate_callbacks(cfg.get("callbacks"))
    except ValueError as e:
        raise BadInput(str(e)) from None
    loggers = instantiate_loggers(cfg.get("logger"), cfg, resume_id=wandb_id_to_resume(ckpt))
    counter, clock = BatchCounter(), TrainingClock()
    failed = True
    try:
        log_run_labels(loggers)
        trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=[*callbacks, counter, clock, RNGState()],
                                          logger=loggers or False, default_root_dir=str(out))
        start = time.perf_counter()
        if ckpt is not None:
            log.info("resuming from %s", ckpt)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt)  # Ctrl-C: Lightning saves, then exits
        launch_seconds = time.perf_counter() - start
        if not trainer.is_global_zero:  # DDP started by command line (hardware=ddp on GPUs): rank 0 alone scores
            failed = False
            return {}
        # under ddp_spawn the steps ran in worker processes: the weights come back, the counters do not
        steps = trainer.global_step or _saved_step(out / "checkpoints" / "last.ckpt")
        log_step = logged_step(trainer) or saved_logged_step(out / "checkpoints" / "last.ckpt")

        model.eval()
        if model.generates_video and trainer.strategy.root_device.type == "cuda":
            model.to(trainer.strategy.root_device)  # Lightning hands it back on the CPU after fit; sample on the GPU
        if not model.generates_video:  # e.g. a tokenizer or a backbone: it exports and measures itself
            scores = model.after_fit(datamodule, out)
            print_scores(scores, title=f"{type(model).__name__} after training ({out})")
        elif not scored:
            scores = {}
            log.info("dataset=%s is not scored after training (circle motion only applies to circles); score "
                     "the run with evaluate.py run_dir=%s protocol=...", dataset_name(cfg), out)
        else:
            scores = _evaluate_generator(model, datamodule, cfg.evaluation, out, steps, loggers, log_step)
            for name, settings in variants.items():
                with generation_settings(model, settings, f"evaluation.variants.{name}"):
                    scores |= {f"{name}/{k}": v for k, v in _evaluate_generator(
                        model, datamodule, cfg.evaluation, out, steps, loggers, log_step, tag=name).items()}
        fps = counter.batches * datamodule.frames_per_batch / launch_seconds if counter.batches else None
        metrics = {**scores, "train/seconds": clock.before + launch_seconds, "train/global_step": steps,
                   "train/frames_per_second": fps}
        if ckpt is not None:
            metrics["train/resumed_from"] = str(ckpt)
            metrics["train/seconds_before_resume"] = clock.before if clock.restored else None
            if not clock.restored:
                log.warning("%s predates the training clock: train/seconds counts this launch only", ckpt)
        guard = next((c for c in callbacks if isinstance(c, DivergenceGuard)), None)
        if guard is not None and guard.diverged:
            metrics |= {"train/diverged": True, "train/diverged_at_step": guard.diverged_at}
        write_json(out / "metrics.json", metrics)
        log_scores(loggers, metrics, step=log_step)
        failed = False
        return metrics
    finally:
        close_loggers(loggers, failed=failed)


def _generation_variants(cfg: DictConfig, model) -> dict[str, dict]:
    """evaluation.variants: {name: {hparam: value}}: the trained model is also scored with these generation
    settings (e.g. regression: {mode: regression} for a Splitter), its metrics prefixed with the name. Checked
    here, before training."""
    variants = OmegaConf.select(cfg, "evaluation.variants")
    variants = OmegaConf.to_container(variants, resolve=True) if isinstance(variants, DictConfig) else variants or {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise ValueError(f"evaluation.variants={variants} is invalid; allowed: a mapping of names to generation "
                         "settings, e.g. evaluation.variants.regression.mode=regression")
    if variants and not model.generates_video:
        raise ValueError(f"evaluation.variants is invalid for {type(model).__name__}: it is not a video generator; "
                         "allowed: {}")
    for name, settings in variants.items():
        with generation_settings(model, settings, f"evaluation.variants.{name}"):
            pass
    return variants


def _evaluate_generator(model, datamodule, ev, out: Path, steps: int, loggers: list, log_step: int,
                        tag: str = "evaluation") -> dict:
    """Sample the fixed prompt list, score motion, write the samples and their manifest; the clips go to the
    run's W&B logger as the table `<tag>/clips` at `log_step`."""
    with inference_autocast(model.device):
        report = evaluate_circles(model, datamodule.prompts, datamodule.holdout_prompts,
                                  ev.clips_per_prompt, ev.num_frames, ev.seed, circles_settings(datamodule))
    title = "circle motion accuracy" + ("" if tag == "evaluation" else f", {tag}")
    print_report(report, datamodule.holdout_prompts, title=f"{title} ({out})")
    manifest = out / "samples" / "manifest.jsonl"
    rows = write_samples(report.videos, report.prompts, out / "samples" / tag, heldout=datamodule.holdout_prompts,
                         manifest=manifest, fields={"tag": tag, "step": steps, "seed": ev.seed})
    columns = clip_columns(report.prompts, datamodule.holdout_prompts, report.verdicts, report.predicted_verdicts)
    log_clips_table(loggers, f"{tag}/clips", columns, [manifest.parent / r["path"] for r in rows], log_step)
    return report.metrics()


def _saved_step(checkpoint: Path) -> int:
    if not checkpoint.is_file():
        return 0
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def optimized_value(metrics: dict, name: str | None, direction: str = "maximize") -> float | None:
    """The value a sweep compares. A diverged run or a NaN/inf value counts as the worst possible value, so an
    Optuna study records it instead of aborting (its sweeper stops the whole study on NaN)."""
    if not name:
        return None
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"optimized_direction={direction} is invalid; allowed: maximize, minimize")
    worst = float("-inf") if direction == "maximize" else float("inf")
    if metrics.get("train/diverged") or metrics.get("failed"):
        return worst
    if name not in metrics and not any(k.startswith("motion_acc/") for k in metrics):
        return None  # a run that is not scored after training (a real data set): nothing to compare
    if name not in metrics:
        raise ValueError(f"optimized_metric={name} is invalid; allowed: one of {sorted(metrics)}")
    value = float(metrics[name])
    return value if math.isfinite(value) else worst
