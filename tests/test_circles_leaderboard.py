"""scripts/circles_leaderboard.py: which runs it trains, in which order, what it skips and resumes, and that a bad
override stops it before anything trains. The runner is recorded, not executed: what is tested is the plan."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def board():
    return load_script("circles_leaderboard")


class Recorder:
    """Stands in for run_stage: records each command; a train.py stage "finishes" by writing metrics.json,
    except the ones named in `fail`."""

    def __init__(self, fail: tuple[str, ...] = ()):
        self.commands: list[list[str]] = []
        self.fail = fail

    def __call__(self, command):
        self.commands.append(command)
        folder = next((a.split("=", 1)[1] for a in command if a.startswith("hydra.run.dir=")), None)
        failed = folder is not None and any(f in folder for f in self.fail)
        if folder is not None and not failed and "train.py" in command[1]:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "metrics.json").write_text("{}")
        return 1 if failed else 0


def arg(command: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in command if a.startswith(f"{key}=")), None)


def test_shared_first_stages_train_once_before_every_seed_that_reads_them(board, tmp_path):
    plan = board.stages(tmp_path, [0, 1, 2], ["splitter", "magvit"])
    folders = [s.folder.relative_to(tmp_path).as_posix() for s in plan]
    assert folders == ["splitter/circles_unclip/seed0", "splitter/splitter/seed0", "splitter/splitter/seed1",
                       "splitter/splitter/seed2", "magvit/tokenizer/seed0", "magvit/transformer/seed0",
                       "magvit/transformer/seed1", "magvit/transformer/seed2"]
    assert [s.scored for s in plan] == [False, True, True, True, False, True, True, True]
    assert [s.seed for s in plan] == [0, 0, 1, 2, 0, 0, 1, 2]
    export = tmp_path / "splitter" / "circles_unclip" / "seed0" / "export"
    assert f"model.export_dir={export}" in plan[0].overrides
    assert all(f"backbone.path={export}" in s.overrides for s in plan[1:4])
    assert all(f"model.tokenizer_ckpt={plan[4].folder}" in s.overrides for s in plan[5:])
    assert "experiment=magvit_tokenizer_circles_8x" in plan[4].overrides
    assert all("experiment=magvit_circles_8x" in s.overrides for s in plan[5:])


def test_a_finished_stage_is_skipped_and_a_stopped_one_resumes_from_its_folder(board, tmp_path):
    stage = board.Stage(tmp_path / "run", ("experiment=video_gan_circles",), 1)
    fresh = board.train_command(stage, ["trainer.max_steps=5"])
    assert fresh[1].endswith("train.py") and fresh[2:] == [
        "experiment=video_gan_circles", "seed=1", "print_config=false", "trainer.max_steps=5",
        f"hydra.run.dir={stage.folder}"]
    (stage.folder / "checkpoints").mkdir(parents=True)
    (stage.folder / "checkpoints" / "step=500.ckpt").write_bytes(b"")
    assert board.train_command(stage, [])[-1] == f"ckpt_path={stage.folder}"
    (stage.folder / "metrics.json").write_text("{}")
    assert board.train_command(stage, []) is None


def test_the_whole_board_trains_then_scores_every_entry_but_the_shared_stages(board, tmp_path, capsys):
    record = Recorder()
    assert board.main(["--out", str(tmp_path), "--seeds", "0", "1"], run=record) == 0
    trained = [arg(c, "hydra.run.dir") for c in record.commands[:-1]]
    assert len(trained) == 2 + 3 + 3 + 2 and len(set(trained)) == len(trained)
    score = record.commands[-1]
    assert score[1].endswith("evaluate.py") and "protocol=circles_benchmark" in score
    runs = arg(score, "benchmark").strip("[]").split(",")
    assert runs == [t for t in trained if "circles_unclip" not in t and "tokenizer" not in t] and len(runs) == 8

    again = Recorder()
    assert board.main(["--out", str(tmp_path), "--seeds", "0", "1"], run=again) == 0
    assert len(again.commands) == 1 and again.commands[0][1].endswith("evaluate.py")
    assert capsys.readouterr().out.count("done already") == 10


def test_a_failed_stage_stops_the_board_before_the_stages_after_it(board, tmp_path, capsys):
    record = Recorder(fail=("magvit/tokenizer",))
    assert board.main(["--out", str(tmp_path), "--entries", "magvit", "keypoint_vae", "--seeds", "0"], run=record) == 1
    assert [arg(c, "hydra.run.dir") for c in record.commands] == [str(tmp_path / "magvit" / "tokenizer" / "seed0")]
    assert "the same command goes on from its newest checkpoint" in capsys.readouterr().err


def test_a_bad_override_is_refused_before_anything_trains(board, tmp_path, capsys):
    record = Recorder()
    assert board.main(["--out", str(tmp_path), "--entries", "gan", "--", "trainer.max_stepz=5"], run=record) == 2
    assert record.commands == []
    assert "trainer.max_stepz" in capsys.readouterr().err


def test_the_dry_run_prints_every_command_and_runs_none(board, tmp_path, capsys):
    record = Recorder()
    assert board.main(["--out", str(tmp_path), "--entries", "gan", "--seeds", "4", "--dry-run"], run=record) == 0
    assert record.commands == []
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "seed=4" in lines[0] and "protocol=circles_benchmark" in lines[1]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_waits_for_the_stage_to_save_before_the_board_stops(board, tmp_path):
    # the stage, like train.py, takes a while after SIGINT to write its checkpoint; the board must not kill it
    saved, started = tmp_path / "interrupted.ckpt", tmp_path / "started"
    stage = (f"import os, signal, sys, time, pathlib\n"
             f"def save(*_):\n    time.sleep(1.0)\n    pathlib.Path({str(saved)!r}).write_text('ok')\n    sys.exit(1)\n"
             f"signal.signal(signal.SIGINT, save)\n"
             f"pathlib.Path({str(started)!r}).write_text(str(os.getpid()))\ntime.sleep(60)\n")
    command = [sys.executable, "-c", stage]

    def ctrl_c():  # what a terminal does: SIGINT to the board and to its child
        deadline = time.time() + 30
        while not (started.exists() and started.read_text()) and time.time() < deadline:
            time.sleep(0.05)
        os.kill(int(started.read_text()), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        board.run_stage(command)
    assert saved.read_text() == "ok"

