"""Compose a task's config in process, as the command line would, with every output under one folder: for the
tests and for scripts that run several training runs in one process (scripts/gpu_check.py)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

CONF = Path(__file__).resolve().parents[3] / "conf"


def compose_run(config_name: str, overrides: list[str], out: Path | None = None) -> DictConfig:
    """The composed config of conf/<config_name>.yaml. With `out`, the run folder is `out` and paths.root_dir
    its parent (so data/cache and outputs/ go beside it), and .hydra/config.yaml is written into it as Hydra
    would (evaluate.py rebuilds a run's model from that file)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    if out is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(out)
            cfg.paths.root_dir = str(out.parent)
            cfg.paths.output_dir = str(out)
        (out / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), out / ".hydra" / "config.yaml")
    HydraConfig.instance().set_config(cfg)
    return cfg
