"""What every entry point does around its task: print the config; bad input ends with one line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

from t2vlab.tasks.preflight import BadInput


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
    try:
        return task(cfg)
    except BadInput as e:  # a plain message, not a traceback: nothing ran yet
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
