"""What every entry point does around its task: print the config; bad input ends with one line and exit code 2."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import rich
import rich.syntax
import rich.tree
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from t2vlab.runtime.atomic import atomic_path
from t2vlab.tasks.config_types import check_config_types
from t2vlab.tasks.preflight import BadInput

log = logging.getLogger(__name__)


def print_config_tree(cfg: DictConfig) -> None:
    tree = rich.tree.Tree("config", style="bold")
    for key, value in cfg.items():
        branch = tree.add(str(key), style="bold cyan")
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    rich.print(tree)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_task(task: Callable[[DictConfig], dict], cfg: DictConfig) -> dict:
    """Run one job. In a multirun a failing job is recorded (FAILED in its folder, {"failed": True} returned)
    and the sweep goes on; a single run fails loudly."""
    if cfg.get("print_config", True):
        print_config_tree(cfg)
    try:
        check_config_types(cfg)  # every entry point: a key its class does not take, or a value of the wrong type
        return task(cfg)
    except BadInput as e:  # a plain message, not a traceback: nothing ran yet
        if in_multirun():
            return _record_failure(cfg, f"error: {e}")
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        if not in_multirun():
            raise
        return _record_failure(cfg, traceback.format_exc())


def _record_failure(cfg: DictConfig, text: str) -> dict:
    out = Path(cfg.paths.output_dir)
    with atomic_path(out / "FAILED") as tmp:
        tmp.write_text(text)
    log.error("job %s failed; the sweep goes on. Details: %s", out, out / "FAILED")
    return {"failed": True, "error": text.strip().splitlines()[-1] if text.strip() else ""}
