"""scripts/gpu_check.py's logic on the CPU, so that the GPU check cannot rot between the runs on a GPU."""

import json
from pathlib import Path

import pytest
import torch
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


def test_without_cuda_it_says_what_it_would_have_checked(gpu_check, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--checks", "fit", "fvd"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "no CUDA device" in out and "fit, fvd" in out


def test_every_check_passes_on_the_cpu(gpu_check, scripted_i3d, tmp_path):
    code = gpu_check.main(["--device", "cpu", "--checks", "fit", "backbone", "fvd", "throughput",
                           "--models", "keypoint_vae", "--precisions", "a10", "--families", "keypoint_vae",
                           "--iterations", "2", "--data-clips", "32",
                           "--fvd-weights", str(scripted_i3d), "--out", str(tmp_path)])
    report = json.loads((tmp_path / "report.json").read_text())
    failed = [r for r in report["rows"] if not r["ok"]]
    assert code == 0 and not failed and report["complete"], failed
    checks = {r["check"] for r in report["rows"]}
    assert {"fit", "fit: reload", "fit: resume", "fit: evaluate", "fit: = cpu at step 0", "backbone", "fvd",
            "throughput"} <= checks
    step0 = next(r for r in report["rows"] if r["check"] == "fit: = cpu at step 0")
    assert step0["values"]["losses"] == ["train/loss"]  # compared, not an empty set
    assert [(t["family"], t["precision"]) for t in report["throughput"]] == [("keypoint_vae", "32-true"),
                                                                              ("keypoint_vae", "bf16-mixed")]


def test_the_same_draws_on_cpu_patch_restores_torch(gpu_check):
    before = torch.randn, torch.nn.functional.dropout
    with gpu_check.same_draws_on_cpu():
        torch.manual_seed(0)
        a = torch.randn(3, device="cpu")
        torch.manual_seed(0)
        b = torch.randn(3)
        x = torch.ones(1000)
        kept = torch.nn.functional.dropout(x, 0.5, training=True)
    assert torch.equal(a, b) and (torch.randn, torch.nn.functional.dropout) == before
    assert set(kept.unique().tolist()) <= {0.0, 2.0} and 0.4 < (kept > 0).float().mean() < 0.6


def test_a_loss_off_by_more_than_the_tolerance_fails_and_other_values_are_only_reported(gpu_check):
    cpu = {"train/loss_d": 1.0, "train/loss_g": 0.0, "train/per_sample_entropy": 0.10}
    near = {"train/loss_d": 1.04, "train/loss_g": 4e-4, "train/per_sample_entropy": 0.2}
    row = gpu_check.against_cpu("fit", "x", near, cpu, 5e-2)
    assert row.ok and row.values["losses"] == ["train/loss_d", "train/loss_g"]  # 4e-4 near 0: under the 0.01 floor
    assert row.values["others_worst_relative"] == pytest.approx(1.0)
    far = gpu_check.against_cpu("fit", "x", {**near, "train/loss_d": 1.06}, cpu, 5e-2)
    assert not far.ok and "train/loss_d" in far.detail
    assert not gpu_check.against_cpu("fit", "x", {"train/acc": 1.0}, {"train/acc": 1.0}, 5e-2).ok  # nothing compared


def test_every_model_option_is_checked(gpu_check):
    options = {p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")}
    checked = {override.split("=", 1)[1] for overrides in gpu_check.MODELS.values() for override in overrides
               if override.startswith("model=")} | {name for name in gpu_check.MODELS if name in options}
    assert options <= checked, options - checked
