"""Checks that run on the composed config before anything is built, trained or downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


class BadInput(ValueError):
    """A config value that cannot work, found before any training; the message names the key and the range."""


def family_of(target: str) -> str | None:
    """The family a model or loss class declares (its class attribute `family`); None for a class with none."""
    try:
        return get_class(target).family
    except AttributeError:
        return None


def losses_for(family: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The loss/ options whose class fits a model family."""
    fitting = []
    for path in sorted((conf_dir / "loss").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        if target and family_of(target) == family:
            fitting.append(path.stem)
    return fitting


def check_model_and_loss(cfg: DictConfig, conf_dir: Path = CONF_DIR) -> None:
    model_family = family_of(cfg.model._target_)
    loss_family = family_of(cfg.loss._target_)
    if model_family != loss_family:
        allowed = ", ".join(losses_for(model_family, conf_dir)) or "none found in conf/loss"
        model = cfg.model.get("name") or cfg.model._target_
        raise ValueError(f"loss={cfg.loss._target_.rsplit('.', 1)[-1]} does not fit model={model} "
                         f"(a {model_family!r} model); losses that fit: {allowed}")


def check_positive(cfg: DictConfig, keys: list[str]) -> None:
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if value is not None and not value > 0:
            raise ValueError(f"{key}={value} is invalid; allowed: > 0")


def check_train_config(cfg: DictConfig) -> None:
    check_model_and_loss(cfg)
    check_positive(cfg, ["model.lr_g", "model.lr_d", "model.lr", "dataset.batch_size",
                         "evaluation.clips_per_prompt"])
    frames = OmegaConf.select(cfg, "dataset.settings.num_frames")
    if frames is not None and frames < 2:
        raise ValueError(f"dataset.settings.num_frames={frames} is invalid; allowed: >= 2 (a video has motion)")
    accelerator = OmegaConf.select(cfg, "trainer.accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"trainer.accelerator={accelerator} (hardware=t4/a10) needs a CUDA GPU and none is visible; "
                         "allowed here: hardware=cpu")
