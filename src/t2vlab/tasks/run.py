"""What every entry point does around its task: print the config, report bad input plainly."""

from __future__ import annotations

import logging
from collections.abc import Callable

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def print_config_tree(cfg: DictConfig) -> None:
    tree = rich.tree.Tree("config", style="bold")
    for key, value in cfg.items():
        branch = tree.add(str(key), style="bold cyan")
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    rich.print(tree)


def run_task(task: Callable[[DictConfig], dict], cfg: DictConfig) -> dict:
    if cfg.get("print_config", True):
        print_config_tree(cfg)
    return task(cfg)
