"""hardware=ddp as it runs on GPUs (the command line started again per rank), exercised as 2 CPU processes
(gloo): one output folder, one W&B run, one evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import subprocess_env
from entry_points import run_script

ROOT = Path(__file__).resolve().parents[1]


def test_ddp_on_two_cpu_processes_writes_one_run(tmp_path):
    env = subprocess_env(T2VLAB_ROOT=str(tmp_path))
    # rank 0 forked from the imports done once (tests/entry_points.py); Lightning starts rank 1 as a new process
    result = run_script(
        [ROOT / "train.py", "debug=fast", "print_config=false", "hardware=ddp",
         "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true", "callbacks.video_sampler=null",
         "evaluation.clips_per_prompt=1",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log and "Starting with 2 processes" in log  # really two processes
    assert {p.name for p in tmp_path.iterdir()} <= {"run", "data"}  # no second run folder from a worker
    run = tmp_path / "run"
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # one W&B run, written by rank 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train/global_step"] == 4
    # rank 1 runs train.py too; only rank 0 samples and scores: 18 seen prompts and the held-out one, once each
    assert len((run / "samples" / "manifest.jsonl").read_text().splitlines()) == 19
    assert log.count("circle motion accuracy") == 1
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 4
