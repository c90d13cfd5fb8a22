"""The entry points as a researcher types them."""

import subprocess
import sys
from pathlib import Path

from entry_points import run_script

ROOT = Path(__file__).resolve().parents[1]


ENV = {"PATH": "/usr/bin:/bin", "HYDRA_FULL_ERROR": "0"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A new `python` process, imports and all, as a researcher starts it."""
    return subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:]], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=ENV)


def run_forked(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The same, forked from a process that has done the imports (tests/entry_points.py)."""
    return run_script([ROOT / args[0], *args[1:]], cwd=cwd, env=ENV, timeout=120)


def test_unknown_option_names_the_valid_ones(tmp_path):
    result = run("train.py", "model=transformer", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model=transformer is invalid; allowed: circles_unclip, gan,") and "video_gan" in last
    assert not (tmp_path / "outputs").exists()


def test_unknown_options_are_found_in_every_group_and_search_path(tmp_path):
    from t2vlab.tasks.group_options import unknown_option

    conf = ROOT / "conf"
    assert unknown_option(["model=video_gan", "loss=gan_r3", "experiment=splitter/dual_base", "seed=3",
                           "dataset.batch_size=8", "backbone=null", "+debug=fast"], conf) is None
    assert unknown_option(["-m", "loss=gan_bce,gan_hinge", "model=choice(gan,video_gan)"], conf) is None
    assert unknown_option(["-m", "loss=gan_bce,gan_hnige"], conf).startswith("error: loss=gan_hnige is invalid")
    assert unknown_option(["experiment=splitter/dual"], conf).startswith("error: experiment=splitter/dual is")
    assert unknown_option(["+hardware=tpu"], conf).startswith("error: hardware=tpu is invalid; allowed: a10,")
    extra = tmp_path / "conf" / "loss"
    extra.mkdir(parents=True)
    (extra / "foreign.yaml").write_text("{}\n")
    assert unknown_option(["loss=foreign"], conf) is not None
    assert unknown_option(["loss=foreign", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"], conf) is None


def test_bad_number_is_reported_with_key_and_range(tmp_path):
    result = run_forked("train.py", "dataset.settings.num_frames=1", "logger=none", cwd=tmp_path)
    assert result.returncode != 0
    assert "dataset.settings.num_frames=1 is invalid; allowed: int >= 2" in result.stderr


def test_evaluate_without_a_run_says_what_to_pass(tmp_path):
    result = run_forked("evaluate.py", cwd=tmp_path)
    assert result.returncode != 0
    assert "pass exactly one of run_dir=" in result.stderr and "videos=" in result.stderr
