"""The entry points as a researcher types them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:]], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HYDRA_FULL_ERROR": "0"})


def test_unknown_option_names_the_valid_ones(tmp_path):
    result = run("train.py", "model=transformer", cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'model/transformer'" in result.stderr
    assert "gan" in result.stderr and "video_gan" in result.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.ckpt"))


def test_bad_number_is_reported_with_key_and_range(tmp_path):
    result = run("train.py", "dataset.settings.num_frames=1", "logger=none", cwd=tmp_path)
    assert result.returncode != 0
    assert "dataset.settings.num_frames=1 is invalid; allowed: int >= 2" in result.stderr


def test_evaluate_without_a_run_says_what_to_pass(tmp_path):
    result = run("evaluate.py", cwd=tmp_path)
    assert result.returncode != 0
    assert "pass exactly one of run_dir=" in result.stderr and "videos=" in result.stderr
