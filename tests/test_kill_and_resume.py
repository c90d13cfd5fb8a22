"""A training process killed with SIGKILL resumes from its newest checkpoint, in the same W&B run, and ends
with the same weights and metrics as a run that was never stopped."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import torch
from conftest import subprocess_env
from entry_points import run_script, start_script

ROOT = Path(__file__).resolve().parents[1]
# 32 clips in batches of 8 = 4 GAN iterations = 8 optimiser steps per epoch: checkpoints land on epoch ends. A
# small video GAN: what is tested is the resume, not the model
RUN = ["debug=fast", "logger=wandb", "seed=3", "print_config=false", "trainer.max_steps=32",
       "dataset.settings.num_videos=32", "model.generator.base_channels=32", "model.generator.hidden=64",
       "model.discriminator.features=64", "callbacks.model_checkpoint.every_n_train_steps=8",
       "callbacks.model_checkpoint.save_top_k=-1", "evaluation.clips_per_prompt=1", "callbacks.video_sampler=null"]
# Same code, same thread count, RNG states restored from the checkpoint: the runs are expected to be
# bitwise identical (measured: max difference 0.0); the bound only allows for a BLAS that reorders sums.
ATOL = 1e-6


def command(tmp: Path, run_dir: Path, *extra: str) -> tuple[list[str], dict]:
    """train.py's arguments and environment; the runs are forked from a process that has done the imports
    (tests/entry_points.py), each a process of its own."""
    env = subprocess_env(T2VLAB_ROOT=str(tmp))
    return [ROOT / "train.py", *RUN, *extra, f"hydra.run.dir={run_dir}"], env


def wandb_ids(run_dir: Path) -> set[str]:
    return {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    experiment = tmp_path / "outputs" / "debug_fast"
    cmd, env = command(tmp_path, tmp_path / "straight")
    result = run_script(cmd, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    killed = experiment / "killed"
    cmd, env = command(tmp_path, killed)
    proc = start_script(cmd, env=env, cwd=tmp_path)
    deadline = time.time() + 240
    while not list((killed / "checkpoints").glob("step*.ckpt")) and time.time() < deadline:
        time.sleep(0.02)
    assert proc.exitcode is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert not (killed / "checkpoints" / "last.ckpt").exists() and not (killed / "metrics.json").exists()
    # a kill during a save may leave a temporary file (*.ckpt.tmp), never a truncated checkpoint
    for ckpt in (killed / "checkpoints").glob("*.ckpt"):
        assert torch.load(ckpt, weights_only=False)["global_step"] > 0

    resumed = experiment / "resumed"
    cmd, env = command(tmp_path, resumed, "ckpt_path=last")  # the newest checkpoint of this experiment
    result = run_script(cmd, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    straight_state = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=False)
    resumed_state = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed_state["global_step"] == straight_state["global_step"] == 32
    diff = max((straight_state["state_dict"][k].float() - v.float()).abs().max().item()
               for k, v in resumed_state["state_dict"].items())
    assert diff <= ATOL
    straight_metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    resumed_metrics = json.loads((resumed / "metrics.json").read_text())
    assert resumed_metrics["train/resumed_from"].startswith(str(killed))
    for key, value in straight_metrics.items():
        if key.startswith("motion_acc/"):
            assert resumed_metrics[key] == value, key
    assert wandb_ids(resumed) == wandb_ids(killed) and len(wandb_ids(killed)) == 1  # the same W&B run
