"""Optuna searches (a diverging trial does not stop the study; a stored study resumes) and the launchers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import yaml
from conftest import subprocess_env
from entry_points import run_script

ROOT = Path(__file__).resolve().parents[1]
TINY = ["debug=fast", "logger=none", "print_config=false", "callbacks.video_sampler=null",
        "evaluation.clips_per_prompt=1"]


def multirun(tmp_path: Path, *overrides: str, sweep: str = "sweep", forked: bool = True) -> subprocess.CompletedProcess:
    """train.py -m, forked from a process that has done the imports (tests/entry_points.py) or, forked=False, a
    new python process."""
    argv = [ROOT / "train.py", "-m", *TINY, *overrides, f"hydra.sweep.dir={tmp_path / sweep}",
            f"hydra.searchpath=[file://{ROOT / 'tests/conf'}]"]
    env = subprocess_env(T2VLAB_ROOT=str(tmp_path))
    result = run_script(argv, cwd=tmp_path, env=env, timeout=600) if forked else \
        subprocess.run([sys.executable, *map(str, argv)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_three_trials_with_one_diverging_finish_and_report_the_best(tmp_path):
    multirun(tmp_path, "hparams_search=three_trials_one_diverging")
    sweep = tmp_path / "sweep"
    trials = [p for p in sweep.iterdir() if p.is_dir()]
    assert len(trials) == 3
    diverged = [p for p in trials if "train/diverged" in (p / "metrics.json").read_text()]
    assert len(diverged) == 1
    assert "model.lr_g=10000.0" in yaml.safe_load((diverged[0] / ".hydra" / "overrides.yaml").read_text())
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"]["model.lr_g"] != 1e4 and best["best_value"] > float("-inf")


def test_a_stored_study_resumes_where_it_stopped(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    for run in ("first", "second"):
        multirun(tmp_path, "hparams_search=video_gan_optuna", "hydra.sweeper.n_trials=1",
                 f"hydra.sweeper.storage={storage}", sweep=run)
    study = optuna.load_study(study_name="video_gan_optuna", storage=storage)
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)


def test_submitit_local_launcher_runs_each_job(tmp_path):
    multirun(tmp_path, "launcher=submitit_local", "seed=0,1")
    done = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(done) == 2
    assert list((tmp_path / "sweep" / ".submitit").rglob("*_result.pkl"))  # they ran through submitit


def test_local_parallel_launcher_runs_each_job(tmp_path):
    # a new process: forked from the forkserver, the sweep sat minutes waiting for joblib's (loky) workers
    multirun(tmp_path, "launcher=local_parallel", "seed=0,1", forked=False)
    assert len(list((tmp_path / "sweep").glob("*/metrics.json"))) == 2
