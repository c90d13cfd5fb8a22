"""What a run is, in the words of its command line: the option chosen in each config group, the overrides and the
command, for every logger; `group=option` tags for the main groups. Runs started without Hydra (a test calling the
task directly) have none."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.loggers import Logger

MAIN_GROUPS = ("model", "loss", "dataset", "hardware", "experiment")


def run_labels() -> dict:
    """{"choices/<group>": option (None where the group is unset), "overrides": [...], "command": "..."}."""
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    choices = {f"choices/{group}": option for group, option in hydra_cfg.runtime.choices.items()
               if not group.startswith("hydra/")}
    overrides = list(hydra_cfg.overrides.task)
    return {**choices, "overrides": overrides, "command": _command(hydra_cfg.job.name, overrides)}


def _command(job_name: str, overrides: list[str]) -> str:
    """The command line as typed when this process is the entry point; in a launcher's worker process (or a
    test) sys.argv is someone else's, so the command that reruns this job is rebuilt from its overrides."""
    if Path(sys.argv[0]).name == f"{job_name}.py":
        return shlex.join(["python", *sys.argv])
    return shlex.join(["python", f"{job_name}.py", *overrides])


def choice_tags() -> dict[str, str]:
    """{group: option} for the main groups that are set."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: choices[group] for group in MAIN_GROUPS if choices.get(group)}


def log_run_labels(loggers: list[Logger]) -> None:
    """The labels as hyperparameters: W&B's config, MLflow's params, TensorBoard's and CSV's hparams.yaml."""
    labels = run_labels()
    if labels:
        for logger in loggers:
            logger.log_hyperparams(labels)
