"""A checkpoint that cannot be read is refused before any work, naming the file and what is expected: each kind of
damage through load_checkpoint, and every entry point path that loads a checkpoint at start."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import subprocess_env
from entry_points import run_script
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from t2vlab.models.magvit.tokens import load_tokenizer
from t2vlab.runtime.checkpoint_file import EXPECTED, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def write_lightning_like(path: Path) -> Path:
    """What train.py's checkpoints hold at the top level, small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "global_step": 4, "pytorch-lightning_version": "2.6.6",
                "state_dict": {"w": torch.arange(4096.0)}, "hyper_parameters": {"lr": 1e-3}}, path)
    return path


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:]


# kind -> (the damaged bytes from a good checkpoint's bytes, the reason the message gives)
DAMAGE = {
    "random_bytes": (lambda good: np.random.default_rng(0).bytes(len(good)), "not a zip file"),
    "truncated": (lambda good: good[:len(good) // 2], "not a zip file"),
    "flipped_bytes": (_flip_middle, "fails its CRC check"),
    "text_file": (lambda good: b"model: gan\nlr_g: 0.0002\n", "not a zip file"),
    "empty": (lambda good: b"", "the file is empty"),
}


def damaged(kind: str, path: Path) -> Path:
    good = write_lightning_like(path).read_bytes()
    path.write_bytes(DAMAGE[kind][0](good))
    return path


def not_lightning(kind: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"a bare state_dict": OrderedDict(w=torch.ones(3)), "a tensor": torch.ones(3),
                "a list": [1, 2]}[kind], path)
    return path


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_file_is_refused_naming_it_and_what_is_expected(tmp_path, kind):
    path = damaged(kind, tmp_path / "last.ckpt")
    with pytest.raises(ValueError) as refused:
        load_checkpoint(path, f"ckpt_path={path}")
    message = str(refused.value)
    assert message.startswith(f"ckpt_path={path} is invalid: ") and message.endswith(f"allowed: {EXPECTED}")
    assert DAMAGE[kind][1] in message


@pytest.mark.parametrize("kind, reason", [("a bare state_dict", "without state_dict, hyper_parameters"),
                                          ("a tensor", "holding a Tensor"), ("a list", "holding a list")])
def test_a_torch_file_that_is_not_a_lightning_checkpoint_is_refused(tmp_path, kind, reason):
    path = not_lightning(kind, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=reason):
        load_checkpoint(path, "ckpt_path=last")


def test_a_pickled_object_is_not_run(tmp_path):
    path = tmp_path / "object.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "pytorch-lightning_version": "2.6.6",
                "callback": OrderedDict.fromkeys([Path("x")])}, path)
    with pytest.raises(ValueError, match="Python objects other than tensors"):
        load_checkpoint(path, f"ckpt_path={path}")


def test_a_sound_checkpoint_loads(tmp_path):
    state = load_checkpoint(write_lightning_like(tmp_path / "last.ckpt"), "ckpt_path=last")
    assert torch.equal(state["state_dict"]["w"], torch.arange(4096.0)) and state["global_step"] == 4


def test_a_damaged_magvit_tokenizer_checkpoint_is_refused_naming_the_key(tmp_path):
    run = tmp_path / "outputs" / "magvit_tokenizer_circles" / "2026-01-01_00-00-00"
    (run / ".hydra").mkdir(parents=True)
    tokenizer_run = {"model": {"_target_": "t2vlab.lit.magvit_tokenizer.TokenizerModule"}}
    OmegaConf.save(tokenizer_run, run / ".hydra" / "config.yaml")
    damaged("truncated", run / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match=f"model.tokenizer_ckpt={run}: {run}/checkpoints/last.ckpt is invalid"):
        load_tokenizer(run)


def _run_dir(path: Path) -> Path:
    """A run folder as train.py leaves it: its config in .hydra/ (the checkpoint is added by the test)."""
    (path / ".hydra").mkdir(parents=True)
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["debug=fast"])
    OmegaConf.save(cfg, path / ".hydra" / "config.yaml")
    return path


def _entry_point(tmp_path: Path, script: str, *args: str) -> tuple[str, Path]:
    """Run it from tmp_path (outputs/ and data/ there); check it refused with exit 2 and one line, wrote nothing
    but its config and log, and started no W&B run. Returns the last line of stderr and the run folder."""
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.ckpt")}
    run_dir = tmp_path / "refused"
    result = run_script([ROOT / script, *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path, timeout=120,
                        env=subprocess_env(HYDRA_FULL_ERROR="0", WANDB_MODE="offline"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    written = {p.relative_to(run_dir).parts[0] for p in run_dir.rglob("*") if p.is_file()}
    assert written <= {".hydra", f"{Path(script).stem}.log"}, written
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.ckpt")} == before  # no checkpoint new or rewritten
    assert not list(tmp_path.rglob("wandb")) and not (tmp_path / "data").exists()
    return result.stderr.strip().splitlines()[-1], run_dir


def test_train_refuses_a_random_bytes_checkpoint(tmp_path):
    ckpt = damaged("random_bytes", tmp_path / "downloaded.ckpt")
    last, _ = _entry_point(tmp_path, "train.py", f"ckpt_path={ckpt}")
    assert last == f"error: ckpt_path={ckpt} is invalid: not a zip file (cut short, overwritten, or not a torch " \
                   f"file); allowed: {EXPECTED}"


def test_train_last_refuses_the_truncated_checkpoint_it_finds(tmp_path):
    earlier = tmp_path / "outputs" / "debug_fast" / "2026-01-01_00-00-00"
    ckpt = damaged("truncated", earlier / "checkpoints" / "last.ckpt")
    last, _ = _entry_point(tmp_path, "train.py", "debug=fast", "ckpt_path=last")
    assert last.startswith(f"error: ckpt_path=last: {ckpt.relative_to(tmp_path)} is invalid: not a zip file")
    assert last.endswith(EXPECTED)


def test_train_refuses_a_run_folder_whose_newest_checkpoint_has_flipped_bytes(tmp_path):
    run = _run_dir(tmp_path / "outputs" / "train" / "2026-01-01_00-00-00")
    ckpt = damaged("flipped_bytes", run / "checkpoints" / "step000004.ckpt")
    last, _ = _entry_point(tmp_path, "train.py", f"ckpt_path={run}")
    assert last.startswith(f"error: ckpt_path={run}: {ckpt} is invalid: damaged: ") and "CRC check" in last


def test_evaluate_refuses_a_text_file_as_checkpoint_before_looking_for_its_run_folder(tmp_path):
    ckpt = damaged("text_file", tmp_path / "notes.ckpt")
    last, _ = _entry_point(tmp_path, "evaluate.py", f"ckpt_path={ckpt}")
    assert last.startswith(f"error: ckpt_path={ckpt} is invalid: not a zip file") and last.endswith(EXPECTED)


def test_evaluate_run_dir_refuses_a_last_ckpt_that_is_not_a_lightning_checkpoint(tmp_path):
    run = _run_dir(tmp_path / "run")
    ckpt = not_lightning("a bare state_dict", run / "checkpoints" / "last.ckpt")
    last, _ = _entry_point(tmp_path, "evaluate.py", f"run_dir={run}")
    assert last == (f"error: run_dir={run}: {ckpt} is invalid: it is a torch file without state_dict, "
                    f"hyper_parameters, pytorch-lightning_version (its keys: w); allowed: {EXPECTED}")
