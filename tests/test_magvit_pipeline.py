"""The MAGVIT family end to end on tiny settings: the tokenizer run, the transformer run chained to it by
checkpoint, the token cache, generation, the conditional tasks and evaluate.py on a tokenizer run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_cfg

from t2vlab.models.magvit.masking import TASKS, pixel_region
from t2vlab.runtime.hardware import inference_autocast
from t2vlab.tasks.common import build_data_and_backbone, build_model
from t2vlab.tasks.evaluate import evaluate, load_run
from t2vlab.tasks.preflight import BadInput
from t2vlab.tasks.train import train

TINY_TOKENIZER = ["model.tokenizer.channels=8", "model.tokenizer.multipliers=[1,2,2]", "model.tokenizer.latent_dim=6",
                  "model.tokenizer.codebook_size=64", "model.eval_clips=6", "dataset.settings.num_frames=9",
                  "dataset.settings.image_size=32", "dataset.settings.radius=[3,5]"]
TINY_TRANSFORMER = ["model.transformer.dim=32", "model.transformer.depth=1", "model.transformer.heads=2",
                    "dataset.settings.num_frames=9", "dataset.settings.image_size=32", "dataset.settings.radius=[3,5]",
                    "model.steps=3",
                    "evaluation.clips_per_prompt=1"]


@pytest.fixture(scope="module")
def tokenizer_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("magvit") / "tokenizer"
    cfg = compose_cfg("train", ["experiment=magvit_tokenizer_circles", "debug=fast", "logger=none",
                                "print_config=false", *TINY_TOKENIZER], out)
    metrics = train(cfg)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    for key in ("tokenizer/psnr", "tokenizer/ssim", "tokenizer/codes_used", "tokenizer/perplexity"):
        assert metrics[key] is not None
    assert metrics["tokenizer/latent_shape"] == "3x4x4" and metrics["tokenizer/bits_per_clip"] == 3 * 16 * 6
    assert 0 < metrics["tokenizer/codes_used"] <= 1 and 1 <= metrics["tokenizer/perplexity"] <= 64
    per_frame = [float(v) for v in metrics["tokenizer/psnr_per_frame"].split()]  # one per frame, rounded to 0.1
    assert len(per_frame) == 9 and sum(per_frame) / 9 == pytest.approx(metrics["tokenizer/psnr"], abs=0.05)
    assert 0 <= metrics["tokenizer/reconstruction_motion_acc/seen_all"] <= 1  # the tracker on its reconstructions
    assert list((out / "samples" / "reconstructions").glob("*.gif"))
    return out


def _magvit_cfg(tokenizer_run: Path, out: Path, *extra: str):
    return compose_cfg("train", ["experiment=magvit_circles", "debug=fast", "logger=none", "print_config=false",
                                 f"model.tokenizer_ckpt={tokenizer_run}", *TINY_TRANSFORMER, *extra], out)


def test_transformer_trains_on_cached_tokens_and_generates(tokenizer_run, tmp_path):
    cfg = _magvit_cfg(tokenizer_run, tmp_path / "run", f"paths.cache_dir={tmp_path / 'cache'}")
    metrics = train(cfg)
    assert 0 <= metrics["motion_acc/seen_all"] <= 1
    assert 0 <= metrics["frame_prediction/motion_acc/seen_all"] <= 1  # the experiment's frame-prediction variant
    assert 0 <= metrics["frame_prediction/motion_acc_predicted/seen_all"] <= 1  # its generated frames alone
    assert 0 <= metrics["frame_interpolation/motion_acc/seen_all"] <= 1  # and the interpolation variant
    assert "frame_interpolation/motion_acc_predicted/seen_all" not in metrics  # its given frames are first and last
    assert not any(k.startswith("motion_acc_predicted/") for k in metrics)  # text-to-video is given no frame
    only_motion = [f"~protocol.metrics.{k}" for k in ("fvd", "classifier", "ssim", "psnr", "lpips", "fid", "clipsim")]
    report = evaluate(compose_cfg("evaluate", [f"run_dir={tmp_path / 'run'}", "clips_per_prompt=1",
                                               "+generation.generate_task=frame_prediction", "write_videos=false",
                                               "wandb_summary=false", *only_motion], tmp_path / "eval"))
    predicted = report["metrics"]["motion_acc_predicted/seen_all"]
    assert 0 <= predicted["value"] <= 1 and predicted["settings"]["from_frame"] == 1
    shards = list((tmp_path / "cache" / "magvit_tokens").glob("*/shard-*.safetensors"))
    assert len(shards) == 7  # 64 clips, one shard: of their tokens, and of each conditional task's condition tokens
    # a second run reads the cache: no shard is rewritten
    stamps = [s.stat().st_mtime_ns for s in shards]
    train(_magvit_cfg(tokenizer_run, tmp_path / "run2", f"paths.cache_dir={tmp_path / 'cache'}"))
    assert [s.stat().st_mtime_ns for s in shards] == stamps


def test_the_cache_holds_each_tasks_condition_tokens(tokenizer_run, tmp_path):
    from t2vlab.models.magvit.masking import condition_video
    from t2vlab.models.magvit.tokens import build_token_table, load_tokenizer

    tokenizer, identity = load_tokenizer(tokenizer_run)
    videos = torch.rand(5, 9, 3, 32, 32)
    clips = [{"video": v, "id": f"clip{i}", "text": "circle moving left"} for i, v in enumerate(videos)]
    tasks = {t: (lambda v, t=t: condition_video(v, t, cond_frames=2)) for t in ("frame_prediction", "inpaint_central")}
    state = torch.get_rng_state()
    table = build_token_table(tokenizer, identity, clips, "tiny", tmp_path, tasks, "cond_frames=2", batch_size=2,
                              shard_size=3)
    assert torch.equal(torch.get_rng_state(), state)  # building the cache draws nothing a run would then miss
    order = ["clip4", "clip0"]
    with inference_autocast("cpu"):  # the precision the cache is built in
        torch.testing.assert_close(table(order), tokenizer.tokenize(videos[[4, 0]]))
        for task, make in tasks.items():
            torch.testing.assert_close(table.condition(task, order), tokenizer.tokenize(make(videos[[4, 0]])))
    with pytest.raises(KeyError, match="no condition tokens.*cached: \\['frame_prediction', 'inpaint_central'\\]"):
        table.condition("outpaint_central", order)
    # the same tasks read the shards back; a run without conditions shares the clips' folder
    again = build_token_table(tokenizer, identity, clips, "tiny", tmp_path, tasks, "cond_frames=2", shard_size=3)
    assert torch.equal(again.conditions["inpaint_central"], table.conditions["inpaint_central"])
    stamps = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/shard-*")}
    build_token_table(tokenizer, identity, clips, "tiny", tmp_path, {}, "", shard_size=3)
    build_token_table(tokenizer, identity, clips, "tiny", tmp_path, {"inpaint_central": tasks["inpaint_central"]},
                      "cond_frames=2", shard_size=3)
    assert len(list(tmp_path.glob("*/manifest.json"))) == 3  # the clips, and one folder per task
    assert {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/shard-*")} == stamps  # nothing rebuilt


def test_every_task_keeps_the_visible_region_and_fills_the_rest(tokenizer_run, tmp_path):
    cfg = _magvit_cfg(tokenizer_run, tmp_path / "run")
    datamodule, _ = build_data_and_backbone(cfg)
    model = build_model(cfg, datamodule.vocab, datamodule=datamodule).eval()
    video = torch.rand(2, 9, 3, 32, 32)
    for task in TASKS:
        out = model.predict(video, task, prompts=["circle moving left", "circle shrinking"], seed=3)
        assert out.shape == video.shape and 0 <= out.min() and out.max() <= 1
        if task != "generation":
            visible = pixel_region(task, 9, 32, 32)[None, :, None].expand_as(video)
            assert torch.equal(out[visible], video[visible])
            assert not torch.equal(out[~visible], video[~visible])
    again = model.predict(video, "frame_prediction", seed=3)
    assert torch.equal(again, model.predict(video, "frame_prediction", seed=3))  # a seed gives one result
    clips = model.generate(["circle moving left"], 9, seed=1)
    assert clips.shape == (1, 9, 3, 32, 32)
    model.hparams.generate_task = "frame_prediction"  # continue a real clip of the prompt, rendered with the seed
    continued = model.generate(["circle moving left", "circle moving left"], 9, seed=1)
    real = model._real_clips(["circle moving left"] * 2, 9, seed=1)
    assert torch.equal(continued[:, 0], real[:, 0]) and not torch.equal(real[0], real[1])
    with pytest.raises(ValueError, match="num_frames=12 is invalid; allowed: 1 .. 9"):
        model.generate(["circle moving left"], 12)
    with pytest.raises(ValueError, match="task='zoom' is invalid"):
        model.predict(video, "zoom")


def test_a_run_is_rebuilt_on_the_tokenizer_it_trained_on_not_the_newest(tokenizer_run, tmp_path, caplog):
    import shutil

    from t2vlab.tasks.common import pin_to_checkpoint

    runs = tmp_path / "tokenizers"
    shutil.copytree(tokenizer_run, runs / "a")
    train(_magvit_cfg(runs, tmp_path / "run", f"paths.cache_dir={tmp_path / 'cache'}"))  # the folder: its newest, a
    newer = compose_cfg("train", ["experiment=magvit_tokenizer_circles", "debug=fast", "logger=none",
                                  "print_config=false", *TINY_TOKENIZER, "model.tokenizer.latent_dim=5",
                                  "model.tokenizer.codebook_size=32"], runs / "b")
    train(newer)  # now the folder's newest run is b, with another codebook
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    recorded, steps = state["hyper_parameters"]["tokenizer_ckpt"], state["global_step"]
    assert recorded == str((runs / "a" / "checkpoints" / "last.ckpt").resolve())
    *_, model = load_run(str(tmp_path / "run"), None)  # evaluate.py's rebuild: on a, whose weights it holds
    assert model.tokenizer.codebook_size == 64
    resumed = train(_magvit_cfg(runs, tmp_path / "resumed", f"paths.cache_dir={tmp_path / 'cache'}",
                                f"ckpt_path={ckpt}", f"trainer.max_steps={steps + 2}"))
    assert resumed["train/global_step"] == steps + 2  # resumed on a: b's tokens would not fit its codebook
    # a recorded file that is gone: the config's value, with a warning
    run_cfg = compose_cfg("train", ["experiment=magvit_circles", f"model.tokenizer_ckpt={runs}"], tmp_path / "x")
    kept = pin_to_checkpoint(run_cfg, {"hyper_parameters": {"tokenizer_ckpt": str(tmp_path / "gone.ckpt")}})
    assert kept.model.tokenizer_ckpt == str(runs) and "gone.ckpt is gone" in caplog.text


def test_a_missing_tokenizer_stops_before_any_work(tmp_path):
    cfg = compose_cfg("train", ["experiment=magvit_circles", "debug=fast", "logger=none", "print_config=false",
                                f"model.tokenizer_ckpt={tmp_path / 'nowhere'}"], tmp_path / "run")
    with pytest.raises(BadInput, match="experiment=magvit_tokenizer_circles"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_8x_chain_names_the_8x_tokenizer_experiment_when_it_is_missing(tmp_path):
    cfg = compose_cfg("train", ["experiment=magvit_circles_8x", "debug=fast", "logger=none", "print_config=false",
                                f"paths.output_root={tmp_path / 'outputs'}"], tmp_path / "run")
    with pytest.raises(BadInput, match=r"experiment=magvit_tokenizer_circles_8x`"):
        train(cfg)


def test_bad_task_weights_name_the_tasks(tokenizer_run, tmp_path):
    cfg = _magvit_cfg(tokenizer_run, tmp_path / "run", "+model.task_weights.zoom=1.0")
    with pytest.raises(BadInput, match="unknown task.*zoom.*allowed: generation, frame_prediction"):
        train(cfg)


def test_class_conditioning_trains_on_the_prompts_as_classes(tokenizer_run, tmp_path, caplog):
    cfg = _magvit_cfg(tokenizer_run, tmp_path / "run", "model.condition=class",
                      f"paths.cache_dir={tmp_path / 'cache'}")
    metrics = train(cfg)  # its evaluation also samples the held-out prompt, which names no class
    assert 0 <= metrics["motion_acc/heldout"] <= 1
    assert "'circle moving up-right' is not one of model.classes" in caplog.text
    datamodule, _ = build_data_and_backbone(cfg)
    model = build_model(cfg, datamodule.vocab, datamodule=datamodule).eval()
    classes = list(cfg.dataset.settings.prompts)
    assert model.net.num_classes == len(classes) and not model.net.text_len  # a class token, no words
    given = model._condition([classes[3], classes[0], "circle moving up-right"], 3)
    assert given["class_ids"].tolist() == [3, 0, len(classes)]  # an unknown prompt: the null class
    dropped = model._condition([classes[3], classes[0]], 2, drop=torch.tensor([True, False]))
    assert dropped["class_ids"].tolist() == [len(classes), 0]
    tokens = torch.full((2, model.net.num_tokens), model.net.mask_id)
    task = torch.zeros(2, dtype=torch.long)
    # the class reaches the logits: two classes, two predictions for the same fully masked clip
    logits = model.net(tokens, task, class_ids=torch.tensor([0, 1]))
    assert not torch.allclose(logits[0], logits[1])
    *_, reloaded = load_run(str(tmp_path / "run"), None)  # as evaluate.py rebuilds it: the classes come back
    assert reloaded.hparams.classes == classes and reloaded.net.num_classes == len(classes)
    clip = reloaded.generate([classes[1]], 9, seed=2)
    assert clip.shape == (1, 9, 3, 32, 32) and torch.equal(clip, reloaded.generate([classes[1]], 9, seed=2))


@pytest.mark.parametrize("override,message", [
    ("model.condition=words", r"model.condition='words' is invalid; allowed: text, class"),
    ("model.classes=[]", r"model.classes=\[\] is invalid for model.condition=class"),
    ("model.classes=[circle moving down]", r"no class for the training prompt\(s\) \['circle bouncing"),
])
def test_bad_condition_settings_are_refused_by_name(tokenizer_run, tmp_path, override, message):
    extra = [] if override.startswith("model.condition") else ["model.condition=class"]
    cfg = _magvit_cfg(tokenizer_run, tmp_path / "run", override, *extra)
    with pytest.raises(BadInput, match=message):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_magvit_meets_the_family_contract(tokenizer_run, tmp_path):
    from test_family_contract import meets_the_contract

    cfg = _magvit_cfg(tokenizer_run, tmp_path / "run")
    datamodule, _ = build_data_and_backbone(cfg)
    meets_the_contract(build_model(cfg, datamodule.vocab, None, datamodule), cfg.loss._target_)


def test_evaluate_measures_a_tokenizer_run(tokenizer_run, tmp_path):
    cfg = compose_cfg("evaluate", [f"run_dir={tokenizer_run}"], tmp_path / "eval")
    report = evaluate(cfg)
    assert report["metrics"]["tokenizer/eval_clips"] == 6
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["metrics"]["tokenizer/psnr"] == pytest.approx(report["metrics"]["tokenizer/psnr"])


def test_the_task_ablation_grid_is_eight_task_mixes_with_the_spatial_tasks_tied():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = compose_cfg("train", ["experiment=magvit_task_ablation"]).hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    mixes = set()
    for job in jobs:
        weights = compose_cfg("train", ["experiment=magvit_task_ablation", *job]).model.task_weights
        assert weights.generation == 1.0 and set(weights) == set(TASKS)
        spatial = {weights[t] for t in TASKS if t.startswith(("outpaint", "inpaint"))}
        assert len(spatial) == 1  # swept as one
        mixes.add((weights.frame_prediction, weights.frame_interpolation, spatial.pop()))
    assert mixes == {(p, i, s) for p in (0, 0.5) for i in (0, 0.25) for s in (0, 0.25)}


def test_the_adversarial_term_trains_a_gan_family_discriminator_beside_the_tokenizer(tmp_path):
    disc = ("model.discriminator={_target_:t2vlab.models.gan.video.VideoDiscriminator,image_size:32,render_size:16,"
            "base_channels:8,features:32}")

    def run(name: str, weight: float) -> tuple[dict, dict]:
        cfg = compose_cfg("train", ["experiment=magvit_tokenizer_circles", "debug=fast", "logger=none",
                                    "print_config=false", *TINY_TOKENIZER, disc, f"loss.adversarial_weight={weight}",
                                    "loss.adversarial_start=2", "trainer.max_steps=8",
                                    "loss.gan={_target_:t2vlab.models.gan.losses.GANHingeLoss}"], tmp_path / name)
        pl.seed_everything(cfg.seed, workers=True)  # as train() does: the run's initial weights
        datamodule, _ = build_data_and_backbone(cfg)
        before = build_model(cfg, datamodule.vocab, None, datamodule).discriminator.state_dict()
        train(cfg)
        state = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        return before, {k.removeprefix("discriminator."): v for k, v in state.items() if k.startswith("discriminator.")}

    before, after = run("off", 0.0)  # the control: a discriminator that is never stepped keeps its initial weights
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    before, after = run("run", 0.1)
    assert any(not torch.equal(after[k], before[k]) for k in before)  # its optimiser stepped
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "train/adversarial_d" in r]
    assert logged and all(r["step"] > 2 for r in logged)  # on from adversarial_start, not before
    assert all(torch.isfinite(torch.tensor([r["train/adversarial_g"], r["train/adversarial_d"]])).all() for r in logged)


def test_the_perceptual_term_trains_and_stays_out_of_the_checkpoint(tmp_path, alexnet_file):
    out = tmp_path / "perceptual"
    cfg = compose_cfg("train", ["experiment=magvit_tokenizer_circles", "debug=fast", "logger=none",
                                "print_config=false", *TINY_TOKENIZER, "trainer.max_steps=3",
                                "loss.perceptual_weight=0.1", f"loss.perceptual_backbone={alexnet_file}",
                                "loss.perceptual_frames=2"], out)
    train(cfg)
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    logged = [r["train/perceptual"] for r in rows if "train/perceptual" in r]
    assert logged and all(0 < v < float("inf") for v in logged)
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state and all(k.startswith("tokenizer.") for k in state)  # the frozen LPIPS net is not saved


def test_a_relativistic_gan_loss_is_refused_by_name():
    from t2vlab.models.gan.losses import GANR3Loss
    from t2vlab.models.magvit.losses import TokenizerLoss

    with pytest.raises(ValueError, match="GANR3Loss is relativistic.*allowed: .*GANHingeLoss"):
        TokenizerLoss(adversarial_weight=0.1, gan=GANR3Loss())


def test_the_generation_benchmark_times_a_run(tokenizer_run, tmp_path):
    train(_magvit_cfg(tokenizer_run, tmp_path / "run", f"paths.cache_dir={tmp_path / 'cache'}",
                      "evaluation.variants={}"))
    path = Path(__file__).resolve().parents[1] / "bench" / "magvit_generation.py"
    spec = importlib.util.spec_from_file_location("magvit_generation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main([str(tmp_path / "run"), "--repeats", "1", "--out", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text()) == results
    assert results["frames"] == 9 and results["steps"] == 3 and results["tokens"] == 3 * 4 * 4
    assert results["fp32"]["median_s"] > 0 and results["fp32"]["tokenizer_decoder_median_s"] > 0  # no timing race
    assert results["fp32"]["utilisation"]["flops_per_step"] > 0 and results["fp32"]["utilisation"]["mfu_fp32"] > 0
    # and the interpolation-against-prediction measurement on the same run
    path = Path(__file__).resolve().parents[1] / "scripts" / "magvit_interpolation.py"
    spec = importlib.util.spec_from_file_location("magvit_interpolation", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    measured = script.main([str(tmp_path / "run"), "--seeds", "1", "2", "--clips", "1"])
    assert json.loads((tmp_path / "run" / "interpolation.json").read_text()) == measured
    assert measured["frames"] == 9 and measured["per_seed"]["1"]["clips"] == 19  # 18 seen prompts and held out
    for task in ("frame_interpolation", "frame_prediction"):
        for key in ("between/seen_moves", "motion_acc/seen_all"):
            assert 0 <= measured["summary"][f"{task}/{key}"]["mean"] <= 1
