"""Ablation grids from the command line: every combination its own W&B run in the sweep's group, misfit
combinations skipped at launch, a failing job recorded while the sweep goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
TINY = ["debug=fast", "print_config=false", "trainer.max_steps=2", "evaluation.clips_per_prompt=1",
        "callbacks.video_sampler=null"]


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = subprocess_env(T2VLAB_ROOT=str(tmp_path), PYTHONPATH=str(ROOT / "tests"))
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *TINY, *overrides,
                           f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.searchpath=[file://{ROOT / 'tests/conf'}]"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("grid")
    result = sweep(tmp, "model=gan,video_gan", "loss=gan_bce,gan_r3", "seed=0,1")
    assert result.returncode == 0, result.stderr[-2000:]
    return tmp / "sweep"


def test_a_2x2x2_grid_makes_8_runs_in_one_wandb_group(grid):
    jobs = sorted(p for p in grid.iterdir() if p.is_dir())
    assert len(jobs) == 8 and all((j / "metrics.json").is_file() for j in jobs)
    runs = [next((j / "wandb").glob("offline-run-*")) for j in jobs]
    assert len({r.name.rsplit("-", 1)[-1] for r in runs}) == 8  # 8 separate W&B runs
    for job, run in zip(jobs, runs, strict=True):
        blob = next(run.glob("*.wandb")).read_bytes()
        assert b"debug_fast/sweep" in blob  # the group: <experiment>/<sweep folder>
        overrides = (job / ".hydra" / "overrides.yaml").read_text()
        for tag in ("model=", "loss=", "seed="):
            value = next(line[2:] for line in overrides.splitlines() if line.startswith(f"- {tag}"))
            assert value.encode() in blob  # each job is tagged with its overrides


def test_a_misfit_pair_is_listed_at_launch_and_skipped(tmp_path):
    result = sweep(tmp_path, "model=gan", "loss=gan_bce,foreign")
    assert result.returncode == 0, result.stderr[-2000:]
    skipped = (tmp_path / "sweep" / "skipped.txt").read_text()
    assert "loss=foreign" in skipped and "does not fit" in skipped and "loss=gan_bce" not in skipped
    assert "skipping 1 of 2 jobs" in result.stdout + result.stderr
    jobs = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]
    assert len(jobs) == 1 and (jobs[0] / "metrics.json").is_file()


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    result = sweep(tmp_path, "logger=none", "dataset.batch_size=0,8")
    assert result.returncode == 0, result.stderr[-2000:]
    failed, ok = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"
    assert "dataset.batch_size=0 is invalid" in (failed / "FAILED").read_text()
    assert not (failed / "metrics.json").exists() and (ok / "metrics.json").is_file()
