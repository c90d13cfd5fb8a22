"""The evaluation task: a trained run (folder or checkpoint) -> K clips per prompt -> motion accuracy."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from t2vlab.evaluation import evaluate_circles, print_report
from t2vlab.hardware import inference_autocast
from t2vlab.sampling import write_samples
from t2vlab.tasks.common import build_model, instantiate, write_json
from t2vlab.tasks.preflight import BadInput, check_positive

log = logging.getLogger(__name__)


def locate_run(run_dir: str | None, ckpt_path: str | None) -> tuple[Path, Path]:
    """(run folder, checkpoint) from either; a checkpoint lives in <run>/checkpoints/."""
    if not run_dir and not ckpt_path:
        raise ValueError("run_dir=null and ckpt_path=null; allowed: run_dir=<a training run folder> "
                         "or ckpt_path=<a checkpoint inside one>")
    if ckpt_path:
        ckpt = Path(ckpt_path)
        if not ckpt.is_file():
            raise ValueError(f"ckpt_path={ckpt_path} is invalid; allowed: an existing checkpoint file")
        run = Path(run_dir) if run_dir else ckpt.resolve().parent.parent
    else:
        run = Path(run_dir)
        ckpt = run / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            found = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
            raise ValueError(f"run_dir={run_dir} has no checkpoints/last.ckpt; pass ckpt_path=, one of: "
                             f"{found or 'none found'}")
    if not (run / ".hydra" / "config.yaml").is_file():
        raise ValueError(f"run_dir={run} is invalid; allowed: a folder written by train.py "
                         "(it holds .hydra/config.yaml)")
    return run, ckpt


def load_run(run_dir: str | None, ckpt_path: str | None):
    """Rebuild a run's data module and model from its saved config and load the checkpoint's weights."""
    run, ckpt = locate_run(run_dir, ckpt_path)
    run_cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    datamodule = instantiate(run_cfg.dataset)
    model = build_model(run_cfg, datamodule.vocab)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    model.load_state_dict(state["state_dict"])
    return run, ckpt, run_cfg, datamodule, model.eval()


def evaluate(cfg: DictConfig) -> dict:
    try:
        check_positive(cfg, ["clips_per_prompt", "num_frames"])
        run, ckpt, run_cfg, datamodule, model = load_run(cfg.run_dir, cfg.ckpt_path)
    except ValueError as e:
        raise BadInput(str(e)) from None
    out = Path(cfg.paths.output_dir)
    train_prompts = datamodule.prompts
    heldout = datamodule.holdout_prompts
    if cfg.prompts:
        extra = [p for p in cfg.prompts if p not in train_prompts]
        train_prompts, heldout = [p for p in cfg.prompts if p in train_prompts], extra
    num_frames = cfg.num_frames or run_cfg.dataset.settings.num_frames
    with inference_autocast(model.device):
        report = evaluate_circles(model, train_prompts, heldout, cfg.clips_per_prompt, num_frames, cfg.seed)
    print_report(report, heldout, title=f"circle motion accuracy: {ckpt}")
    if cfg.write_videos:
        write_samples(report.videos, report.prompts, out / "samples", cfg.fps, heldout=heldout,
                      fields={"checkpoint": str(ckpt), "seed": cfg.seed})
    metrics = {**report.metrics(), "run_dir": str(run), "checkpoint": str(ckpt),
               "clips_per_prompt": cfg.clips_per_prompt, "num_frames": num_frames, "seed": cfg.seed}
    write_json(out / "metrics.json", metrics)
    log.info("metrics written to %s", out / "metrics.json")
    return metrics
