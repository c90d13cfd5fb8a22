"""The training and evaluation tasks end to end on tiny settings: outputs, resume, W&B, bad input."""

import json
from pathlib import Path

import pytest

from t2vlab.tasks.train import train

PAIRS = [("gan", "gan_bce"), ("gan", "gan_hinge"), ("gan", "gan_r3"),
         ("video_gan", "gan_hinge"), ("video_gan", "gan_r3"), ("video_gan", "gan_bce"),
         ("keypoint_vae", "keypoint_vae")]


@pytest.mark.parametrize("model,loss", PAIRS)
def test_fast_run_writes_the_run_layout(train_cfg, model, loss):
    cfg = train_cfg(f"model={model}", f"loss={loss}")
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    assert 0 <= metrics["motion_acc/seen_all"] <= 1 and 0 <= metrics["motion_acc/heldout"] <= 1
    rows = [json.loads(line) for line in (out / "samples" / "manifest.jsonl").read_text().splitlines()]
    assert any(r["tag"] == "evaluation" for r in rows)
    # the sampler wrote the end of training (as "final", or as the last epoch when that is the same step)
    assert max(r["step"] for r in rows if r["tag"] != "evaluation") == metrics["train/global_step"]
    assert all((out / "samples" / r["path"]).is_file() for r in rows)
    heldout = [r for r in rows if r["heldout"]]
    assert heldout and all(r["prompt"] == "circle moving up-right" for r in heldout)
    # every sampling round scored against the training seconds so far (time to quality)
    scores = [json.loads(line) for line in (out / "samples" / "scores.jsonl").read_text().splitlines()]
    assert scores and scores[-1]["step"] == metrics["train/global_step"]
    seconds = [s["train_seconds"] for s in scores]
    assert seconds == sorted(seconds) and 0 < seconds[-1] <= metrics["train/seconds"]
    assert all(0 <= s["motion_acc/seen_all"] <= 1 for s in scores)


def test_resume_continues_from_the_checkpoint(train_cfg):
    first = train_cfg(name="first")
    train(first)
    ckpt = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    second = train_cfg(f"ckpt_path={ckpt}", "trainer.max_steps=8", name="second")
    metrics = train(second)
    assert metrics["train/global_step"] == 8
    # the resumed session ran only the 2 remaining GAN iterations (4 optimiser steps)
    assert metrics["train/frames_per_second"] > 0


def test_a_resumed_run_counts_the_training_seconds_of_the_launches_before_it(train_cfg):
    import torch

    first = train_cfg(name="first")
    train(first)
    ckpt_file = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    states = torch.load(ckpt_file, weights_only=True)["callbacks"]
    before = states["TrainingClock"]["seconds"]
    sampled_before = states["VideoSampler"]["train_seconds"]
    assert before > sampled_before > 0  # the sampler leaves out its own sampling time

    resumed = train(train_cfg(f"ckpt_path={ckpt_file}", "trainer.max_steps=8", name="second"))
    assert resumed["train/seconds_before_resume"] == pytest.approx(before)
    assert resumed["train/seconds"] > before
    out = Path(train_cfg(name="second").paths.output_dir)
    rows = [json.loads(line) for line in (out / "samples" / "scores.jsonl").read_text().splitlines()]
    assert rows and all(r["train_seconds"] > sampled_before for r in rows)

    # a checkpoint written before the clock existed: the figure covers this launch only, and says so
    old = torch.load(ckpt_file, weights_only=True)
    del old["callbacks"]["TrainingClock"]
    torch.save(old, ckpt_file.with_name("old.ckpt"))
    legacy = train(train_cfg(f"ckpt_path={ckpt_file.with_name('old.ckpt')}", "trainer.max_steps=8", name="third"))
    assert legacy["train/seconds_before_resume"] is None and legacy["train/seconds"] > 0


def test_ctrl_c_saves_a_checkpoint_that_resumes(train_cfg):
    import signal

    cfg = train_cfg("+callbacks.interrupt._target_=conftest.InterruptAt", "+callbacks.interrupt.batch=1",
                    "trainer.max_steps=8")
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            train(cfg)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C while it shuts down
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "interrupted.ckpt"
    assert ckpt.is_file()
    resumed = train(train_cfg(f"ckpt_path={ckpt}", "trainer.max_steps=6", name="resumed"))
    assert resumed["train/global_step"] == 6


def test_offline_wandb_run_holds_the_metrics(train_cfg):
    cfg = train_cfg("logger=wandb")
    train(cfg)
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # wandb 0.31 keeps offline runs in one protobuf log (read by `wandb sync`); keys and strings are stored raw
    log = next(runs[0].glob("*.wandb")).read_bytes()
    for key in ("train/loss_d", "train/loss_g", "motion_acc/seen_all", "motion_acc/heldout", "experiment_name",
                "debug_fast"):
        assert key.encode() in log, key
    assert list((runs[0] / "files" / "media").rglob("*.gif")), "sample videos were not logged"
    import wandb

    assert wandb.run is None  # the run was closed, so the next job starts its own


@pytest.mark.parametrize("override,message", [
    ("dataset.settings.num_frames=1", r"dataset.settings.num_frames=1 is invalid; allowed: >= 2"),
    ("dataset.settings.image_size=48", r"model.generator.image_size=48 is invalid; allowed: 4 \* 2\^k"),
    ("model.lr_g=0", r"model.lr_g=0 is invalid; allowed: > 0"),
    ("model.lr_d=-1e-4", r"model.lr_d=-0.0001 is invalid; allowed: > 0"),
    ("dataset.batch_size=0", r"dataset.batch_size=0 is invalid; allowed: > 0"),
    ("loss._target_=conftest.ForeignLoss", r"does not fit model=.*losses that fit: gan_bce, gan_hinge, gan_r3"),
    ("ckpt_path=/nowhere/last.ckpt", r"ckpt_path=/nowhere/last.ckpt is invalid"),
    ("ckpt_path=last", r"ckpt_path=last is invalid here: no earlier run .* has a checkpoint"),
    ("ckpt_path=/tmp", r"ckpt_path=/tmp is invalid: the folder has no checkpoints"),
])
def test_bad_input_fails_before_any_work(train_cfg, override, message):
    cfg = train_cfg(override)
    with pytest.raises(ValueError, match=message):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()
    assert not (Path(cfg.paths.root_dir) / "data").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is visible here")
def test_gpu_hardware_without_a_gpu_is_refused(train_cfg):
    with pytest.raises(ValueError, match=r"trainer.accelerator=gpu .*needs a CUDA GPU.*allowed here: hardware=cpu"):
        train(train_cfg("hardware=t4"))


def test_blog_model_refuses_other_image_sizes(train_cfg):
    with pytest.raises(ValueError, match=r"image_size=32 is invalid .*allowed: 64"):
        train(train_cfg("model=gan", "dataset.settings.image_size=32", "dataset.settings.radius=[2,5]"))


def test_a_run_scored_by_an_earlier_scorer_is_rescored_in_place(train_cfg):
    import importlib.util

    cfg = train_cfg("evaluation.clips_per_prompt=1")
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert metrics["motion_acc/scorer"] == "circles-v2"
    old = {k: v for k, v in metrics.items() if k != "motion_acc/scorer"}  # as the first scorer left a run
    old["motion_acc/seen_all"] = 0.123
    (out / "metrics.json").write_text(json.dumps(old))
    path = Path(__file__).resolve().parents[1] / "scripts" / "rescore_circles.py"
    spec = importlib.util.spec_from_file_location("rescore_circles", path)
    rescore = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rescore)
    assert rescore.main([str(out.parent)]) == [out]
    again = json.loads((out / "metrics.json").read_text())
    assert again["motion_acc/scorer"] == "circles-v2"
    assert again["superseded"]["circles-v1"]["motion_acc/seen_all"] == 0.123
    assert again["motion_acc/seen_all"] == metrics["motion_acc/seen_all"]  # the same clips, sampled again
    assert again["train/seconds"] == metrics["train/seconds"]  # what is not a motion score stays
    assert rescore.main([str(out.parent)]) == []  # already on the current scorer
