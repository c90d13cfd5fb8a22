"""Every option of every config group composes, resolves, and points at a class that exists."""

import pytest
from conftest import CONF, compose_cfg
from hydra.errors import MissingConfigException
from hydra.utils import get_class
from omegaconf import OmegaConf

from t2vlab.tasks.preflight import family_of, losses_for

GROUPS = ["model", "loss", "dataset", "hardware", "logger", "callbacks", "experiment", "debug", "paths",
          "hparams_search", "launcher"]


def options(group: str) -> list[str]:
    return sorted(str(p.relative_to(CONF / group).with_suffix("")) for p in (CONF / group).rglob("*.yaml"))


def targets(node) -> list[str]:
    if OmegaConf.is_dict(node):
        found = [node["_target_"]] if "_target_" in node else []
        return found + [t for key in node if key != "hydra" for t in targets(node[key])]
    if OmegaConf.is_list(node):
        return [t for item in node for t in targets(item)]
    return []


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_cfg("train", [f"{group}={option}"], tmp_path)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    resolved = OmegaConf.to_container(job, resolve=True)
    assert resolved["paths"]["output_dir"] == str(tmp_path)
    for target in targets(cfg):
        assert get_class(target) is not None


@pytest.mark.parametrize("protocol", ["circles", "msrvtt_thesis"])
def test_evaluate_config_composes_with_each_protocol(protocol, tmp_path):
    cfg = compose_cfg("evaluate", ["run_dir=somewhere", f"protocol={protocol}"], tmp_path)
    assert cfg.run_dir == "somewhere" and cfg.protocol._target_.endswith("Protocol")
    for target in targets(cfg):
        assert get_class(target) is not None
    used = {m._target_.rsplit(".", 2)[1] for m in cfg.protocol.metrics.values()}
    assert {"fvd", "fid", "image", "lpips", "clipsim"} <= used


def test_make_train_runs_the_keypoint_vae_recipe(tmp_path):
    recipe = (CONF.parent / "Makefile").read_text().split("\ntrain:", 1)[1].split("\n\n", 1)[0]
    assert "train.py experiment=keypoint_vae_circles $(ARGS)" in recipe
    cfg = compose_cfg("train", ["experiment=keypoint_vae_circles"], tmp_path)
    assert cfg.experiment_name == "keypoint_vae_circles" and cfg.loss._target_.endswith("KeypointVAELoss")
    assert cfg.model.generator._target_.endswith("layered.LayeredVideoGenerator")
    assert (cfg.trainer.max_steps, cfg.dataset.batch_size, cfg.model.generator.noise_dim) == (1000, 16, 8)
    assert cfg.model.posterior.num_frames == cfg.dataset.settings.num_frames
    assert cfg.model.prior._target_.endswith("DiffusionPrior") and cfg.model.prior_fit_steps == 2000
    assert cfg.loss.path_weight == 10.0


def test_the_video_gan_recipe_composes(tmp_path):
    cfg = compose_cfg("train", ["experiment=video_gan_circles"], tmp_path)
    assert cfg.experiment_name == "video_gan_circles"
    assert cfg.model.generator._target_.endswith("VideoGenerator")
    assert cfg.trainer.precision in ("bf16-mixed", "32-true")



def test_the_layered_recipe_composes_to_its_generator_loss_and_length(tmp_path):
    cfg = compose_cfg("train", ["experiment=video_gan_layered_circles"], tmp_path)
    assert cfg.model.generator._target_.endswith("layered.LayeredVideoGenerator")
    assert cfg.loss._target_.endswith("GANR3Loss") and (cfg.loss.gamma, cfg.loss.every) == (0.1, 1)
    g = cfg.model.generator
    assert (g.size_path, g.keep_in_frame, g.alpha_floor) == ("oscillators", None, 0.0)
    assert (cfg.model.word_weight, cfg.model.blur_sigma, cfg.model.blur_fade) == (1.0, 0.0, 0)
    assert (cfg.trainer.max_steps, cfg.dataset.batch_size) == (2200, 16)  # 1,100 iterations: two optimiser steps each

@pytest.mark.parametrize("overrides,name", [([], "video_gan-gan_hinge"),
                                            (["model=splitter_dual", "backbone=circles_unclip", "loss=splitter_base"],
                                             "splitter_dual-splitter_base")])
def test_a_run_with_no_experiment_is_named_after_its_model_and_loss(overrides, name, tmp_path):
    from t2vlab.tasks.common import name_the_run

    cfg = compose_cfg("train", overrides, tmp_path)
    assert "experiment_name" not in cfg and cfg.hydra.runtime.choices.experiment is None
    assert OmegaConf.select(cfg, "hydra.run.dir").split("/")[-2] == name
    assert OmegaConf.select(cfg, "hydra.sweep.dir").split("/")[-2] == "train"  # a sweep may vary the model
    assert name_the_run(cfg).experiment_name == name
    assert cfg.dataset.batch_size == 32 and cfg.trainer.max_steps == 700  # the base budget, not a recipe's


def test_blog_experiment_is_the_per_frame_gan_with_bce(tmp_path):
    cfg = compose_cfg("train", ["experiment=gan_seed"], tmp_path)
    assert cfg.model.generator._target_.endswith("SeedGenerator")
    assert cfg.loss._target_.endswith("GANBCELoss")
    assert cfg.dataset.batch_size == 16 and cfg.dataset.as_frames


def test_unknown_option_lists_the_valid_ones(tmp_path):
    with pytest.raises(MissingConfigException, match=r"(?s)model/transformer.*video_gan"):
        compose_cfg("train", ["model=transformer"], tmp_path)


def test_every_model_has_a_fitting_loss():
    for model in options("model"):
        family = family_of(compose_cfg("train", [f"model={model}"]).model._target_)  # composed: files may inherit
        assert losses_for(family), model


@pytest.mark.parametrize("search", [None, "video_gan_optuna", "gan_optuna"])
def test_the_sweeper_class_follows_hparams_search(search, tmp_path):
    cfg = compose_cfg("train", [f"hparams_search={search}"] if search else [], tmp_path)
    expected = "OptunaSweeper" if search else "FitCheckingSweeper"
    assert cfg.hydra.sweeper._target_.endswith(expected)
    assert get_class(cfg.hydra.sweeper._target_) is not None
    if search:
        assert cfg.hydra.sweeper.direction == cfg.optimized_direction


@pytest.mark.parametrize("backbone", options("backbone"))
def test_embed_config_composes_with_each_backbone(backbone, tmp_path):
    cfg = compose_cfg("embed", [f"backbone={backbone}"], tmp_path)
    resolved = OmegaConf.to_container(cfg.backbone, resolve=True)
    assert get_class(resolved["_target_"]).name == backbone
    assert resolved["device"] == "cpu"


@pytest.mark.parametrize("dataset", ["tgif", "msrvtt"])
def test_prepare_config_composes_with_each_real_dataset_and_a_missing_file_is_one_line(dataset, tmp_path):
    from t2vlab.tasks.preflight import BadInput
    from t2vlab.tasks.prepare import prepare

    cfg = compose_cfg("prepare", [f"dataset={dataset}"], tmp_path / "run")
    resolved = OmegaConf.to_container(cfg.dataset, resolve=True)
    assert get_class(resolved["_target_"]).name == dataset and resolved["cache_dir"].startswith(str(tmp_path))
    with pytest.raises(BadInput, match="tgif-v1.0.tsv is invalid" if dataset == "tgif" else "videodatainfo.json"):
        prepare(cfg)


@pytest.mark.parametrize("hardware,device,dtype", [("t4", "cuda", "float16"), ("a10", "cuda", "bfloat16"),
                                                   ("cpu", "cpu", None)])
def test_hardware_picks_the_kandinsky_device_and_dtype(hardware, device, dtype, tmp_path):
    cfg = compose_cfg("embed", ["backbone=kandinsky22", f"hardware={hardware}"], tmp_path)
    assert cfg.backbone.device == device
    # cpu: bf16 where the CPU has native bf16, fp32 elsewhere
    assert cfg.backbone.dtype == dtype or (dtype is None and cfg.backbone.dtype in ("bfloat16", "float32"))


@pytest.mark.parametrize("option", [o for o in options("experiment")
                                    if o.startswith("splitter/") and o != "splitter/thesis"])
def test_splitter_experiments_pick_their_variant_and_loss(option, tmp_path):
    cfg = compose_cfg("train", [f"experiment={option}"], tmp_path)
    variant, loss = option.removeprefix("splitter/").rsplit("_", 1)
    losses = {"base": "SplitterBaseLoss", "transform": "SplitterTransformLoss"}
    nets = {"plain": "Splitter", "next": "SplitterNext", "dual": "SplitterDual", "dual_csa": "SplitterDual"}
    assert cfg.loss._target_.rsplit(".", 1)[1] == losses[loss]
    assert cfg.model.net._target_.rsplit(".", 1)[1] == nets[variant]
    assert cfg.model.net.get("self_attention", False) == (variant == "dual_csa")
    assert cfg.backbone._target_.endswith("CirclesUnclipBackbone") and cfg.experiment_name.endswith("_circles")


def test_the_thesis_experiment_is_tgif_on_kandinsky_on_a_t4_and_stops_at_once_without_a_gpu(tmp_path):
    from t2vlab.tasks.preflight import BadInput
    from t2vlab.tasks.train import train

    cfg = compose_cfg("train", ["experiment=splitter/thesis", "logger=none", "print_config=false"], tmp_path / "run")
    resolved = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("dataset", "backbone", "trainer", "loss")}
    assert resolved["dataset"]["_target_"].endswith("TgifDataModule")
    assert resolved["dataset"]["settings"]["num_frames"] is None
    assert resolved["backbone"]["_target_"].endswith("Kandinsky22Backbone") and resolved["backbone"]["device"] == "cuda"
    assert resolved["trainer"]["precision"] == "16-mixed" and resolved["loss"]["_target_"].endswith("TransformLoss")
    # the transform loss as the write-up defines it, and the reference trainer's rules with whole clips of up to
    # 15 sampled frames, one clip per optimizer step
    loss = resolved["loss"]
    assert loss["term"] == "generator" and (loss["alpha"], loss["beta"], loss["transform_weight"]) == (0.7, 0.3, 0.5)
    assert resolved["dataset"]["batch_size"] == 1 and cfg.model.net._target_.endswith("SplitterDual")
    reference = {"max_batch": 15, "reverse": True, "base_step": True, "rotation_step": True, "regression_step": True,
                 "train_start": "prior", "reverse_start": "prior", "blend": "reference", "rotate_text": "raw",
                 "pairs": "all", "accuracy": "relative", "first_frame": "predict"}
    assert {k: cfg.model[k] for k in reference} == reference
    with pytest.raises(BadInput, match="needs a CUDA GPU"):
        train(cfg)


def test_the_best_circles_splitter_is_the_recipe_docs_splitter_measured(tmp_path):
    """experiment=splitter_circles_best composes to what docs/splitter.md's sweep over it ran."""
    recipe = ["model.train_start=first_frame", "model.rotation_step=false", "model.regression_step=false",
              "model.max_batch=4", "model.pairs=consecutive", "model.reverse_start=last_frame",
              "dataset.batch_size=64", "trainer.max_steps=3000"]
    best = compose_cfg("train", ["experiment=splitter_circles_best"], tmp_path)
    measured = compose_cfg("train", ["experiment=splitter/dual_csa_base", *recipe], tmp_path)
    for key in ("model", "loss", "backbone", "dataset", "trainer", "evaluation"):
        assert OmegaConf.to_container(best[key]) == OmegaConf.to_container(measured[key]), key
    assert best.experiment_name == "splitter_circles_best"


def test_the_entropy_tokenizer_is_the_run_docs_magvit_measured(tmp_path):
    """experiment=magvit_tokenizer_circles_8x_entropy composes to the 12,000-step run of docs/magvit.md."""
    recipe = [f"model.tokenizer.{key}" for key in ("latent_dim=10", "codebook_size=1024", "entropy_weight=0.1",
                                                   "commitment_weight=0.25", "entropy_temperature=0.1")]
    named = compose_cfg("train", ["experiment=magvit_tokenizer_circles_8x_entropy"], tmp_path)
    measured = compose_cfg("train", ["experiment=magvit_tokenizer_circles_8x", *recipe], tmp_path)
    for key in ("model", "loss", "dataset", "trainer"):
        assert OmegaConf.to_container(named[key]) == OmegaConf.to_container(measured[key]), key
    assert named.trainer.max_steps == 12000 and named.model.tokenizer.multipliers == [1, 2, 4]
