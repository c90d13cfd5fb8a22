"""Ablation grids from the command line: every combination its own W&B run in the sweep's group, misfit
combinations skipped at launch, a failing job recorded while the sweep goes on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import subprocess_env
from entry_points import run_script

ROOT = Path(__file__).resolve().parents[1]
TINY = ["debug=fast", "print_config=false", "trainer.max_steps=2", "evaluation.clips_per_prompt=1",
        "callbacks.video_sampler=null"]


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = subprocess_env(T2VLAB_ROOT=str(tmp_path), PYTHONPATH=str(ROOT / "tests"))
    return run_script([ROOT / "train.py", "-m", *TINY, *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}",
                       f"hydra.searchpath=[file://{ROOT / 'tests/conf'}]"], cwd=tmp_path, env=env, timeout=600)


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
        assert f"{grid.parent.name}/sweep".encode() in blob  # the group: the sweep folder, <its parent>/<its name>
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


def test_the_comparison_report_shows_each_configuration_with_mean_and_std(grid, tmp_path, caplog):
    from conftest import compose_cfg

    from t2vlab.tasks.evaluate import evaluate

    history = grid / "0" / "history.jsonl"
    history.write_text(history.read_text() + '{"step": 99, "train/lo')  # a line cut by a crash
    for gif in (grid / "0" / "samples").rglob("*.gif"):  # samples overwritten: left out of the picture, named
        gif.write_bytes(b"GIF89a" + bytes(64))
    result = evaluate(compose_cfg("evaluate", [f"compare={grid}"], tmp_path / "cmp"))
    rows = result["rows"]
    assert sorted(r["configuration"] for r in rows) == sorted(
        f"loss={loss} model={model}" for model in ("gan", "video_gan") for loss in ("gan_bce", "gan_r3"))
    for row in rows:
        stat = row["motion_acc/seen_all"]
        assert row["n"] == 2 and stat["n"] == 2 and stat["std"] is not None
    means = [r["motion_acc/seen_all"]["mean"] for r in rows]
    assert means == sorted(means, reverse=True)  # optimized_direction: maximize
    report = (tmp_path / "cmp" / "report.html").read_text()
    assert report.count("<tr>") == 5 and "data:image/png;base64," in report
    assert "http://" not in report and "https://" not in report  # self-contained
    assert {p.name for p in (tmp_path / "cmp" / "plots").iterdir()} >= {
        "motion_acc_seen_all_by_model.png", "motion_acc_seen_all_by_loss.png", "learning_curves.png", "samples.png"}
    assert "left out of the comparison's picture" in caplog.text and str(grid / "0" / "samples") in caplog.text
    if Path("/usr/bin/chromium").exists():  # Debian's chromium; see scripts/screenshot_report.sh
        shot = tmp_path / "report.png"
        subprocess.run(["bash", str(ROOT / "scripts" / "screenshot_report.sh"), str(tmp_path / "cmp" / "report.html"),
                        str(shot)], check=True, timeout=120)
        assert shot.stat().st_size > 20_000


def test_a_failing_job_is_recorded_the_sweep_goes_on_and_compare_lists_it(tmp_path):
    from conftest import compose_cfg

    from t2vlab.tasks.evaluate import evaluate
    from t2vlab.tasks.preflight import BadInput

    assert sweep(tmp_path, "logger=none", "dataset.batch_size=0,8").returncode == 0
    failed, ok = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"  # one job failing does not stop the sweep
    assert "dataset.batch_size=0 is invalid" in (failed / "FAILED").read_text()
    assert not (failed / "metrics.json").exists() and (ok / "metrics.json").is_file()
    result = evaluate(compose_cfg("evaluate", [f"compare={tmp_path / 'sweep'}/*"], tmp_path / "cmp"))
    assert len(result["failed"]) == 1 and "dataset.batch_size=0 is invalid" in result["failed"][0]["error"]
    assert "Failed or unfinished runs" in (tmp_path / "cmp" / "report.html").read_text()
    with pytest.raises(BadInput, match="compare=.* no runs found"):
        evaluate(compose_cfg("evaluate", [f"compare={tmp_path / 'nothing'}"], tmp_path / "cmp2"))


def test_a_relaunched_sweep_with_ckpt_path_last_continues_each_job_from_its_own_checkpoint(tmp_path):
    assert sweep(tmp_path, "logger=none", "seed=0,1").returncode == 0
    result = sweep(tmp_path, "logger=none", "seed=0,1", "ckpt_path=last", "trainer.max_steps=4")
    assert result.returncode == 0, result.stderr[-2000:]
    for job in ("0", "1"):
        metrics = json.loads((tmp_path / "sweep" / job / "metrics.json").read_text())
        assert metrics["train/global_step"] == 4
        assert Path(metrics["train/resumed_from"]).parent.parent == (tmp_path / "sweep" / job).resolve()


def test_a_relaunched_sweep_leaves_finished_jobs_alone_and_starts_unreached_ones_fresh(tmp_path):
    assert sweep(tmp_path, "logger=none", "seed=0,1").returncode == 0
    done, unreached = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"
    before = (done / "metrics.json").read_bytes()
    shutil.rmtree(unreached)  # the machine died before the sweep reached job 1
    result = sweep(tmp_path, "logger=none", "seed=0,1", "ckpt_path=last")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (done / "metrics.json").read_bytes() == before and "already finished" in result.stdout + result.stderr
    metrics = json.loads((unreached / "metrics.json").read_text())
    assert metrics["train/global_step"] == 2 and "train/resumed_from" not in metrics  # not job 0's weights


def test_compare_leaves_out_the_scorings_written_inside_runs_unless_named(tmp_path):
    from t2vlab.evaluation.compare import find_runs

    for run in ("sweep/0", "sweep/0/eval_generation", "sweep/1", "sweep/1/eval_generation"):
        (tmp_path / run / ".hydra").mkdir(parents=True)
        (tmp_path / run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    assert find_runs(str(tmp_path / "sweep")) == [tmp_path / "sweep/0", tmp_path / "sweep/1"]
    assert find_runs(str(tmp_path / "sweep" / "*" / "eval_generation")) == [
        tmp_path / "sweep/0/eval_generation", tmp_path / "sweep/1/eval_generation"]


def test_compare_adds_the_columns_of_generation_variants_runs_were_also_scored_with(tmp_path):
    from t2vlab.evaluation.compare import Run, summarise, summary_keys

    def run(seed, seen, regression_seen):
        return Run(tmp_path / str(seed), {"seed": seed}, [], {"motion_acc/seen_moves": seen,
                                                              "regression/motion_acc/seen_moves": regression_seen,
                                                              "motion_acc/prompt/circle moving left": 1.0})

    runs = [run(0, 0.8, 0.2), run(1, 0.6, 0.4)]
    for r in runs:
        r.configuration = "model=splitter_dual"
    keys = summary_keys(runs, "motion_acc/seen_moves")
    assert keys[0] == "motion_acc/seen_moves" and keys[-1] == "regression/motion_acc/seen_moves"
    assert not any("prompt" in k for k in keys)
    (row,) = summarise(runs, "motion_acc/seen_moves", "maximize")
    mean, std, n = row.stats["regression/motion_acc/seen_moves"]
    assert n == 2 and mean == pytest.approx(0.3) and std == pytest.approx(0.1414, abs=1e-3)
