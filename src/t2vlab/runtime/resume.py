"""Where a resumed run continues from: `ckpt_path=last`, a run folder, or a checkpoint file, and the W&B run
it continues."""

from __future__ import annotations

import json
from pathlib import Path

from t2vlab.evaluation.reports import wandb_run_id


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The run's most recently written checkpoint (interrupted.ckpt, last.ckpt or a periodic one)."""
    found = list((run_dir / "checkpoints").glob("*.ckpt"))
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def resolve_checkpoint(ckpt_path: str | None, experiment_dir: Path, current_run: Path,
                       in_sweep: bool = False) -> Path | None:
    """`ckpt_path` as given on the command line -> a checkpoint file (None: start fresh).

    - `last`: the newest checkpoint in this job's own folder when it has one (a sweep re-launched with the same
      hydra.sweep.dir: every job continues itself); else, for a job of a sweep (`in_sweep`), none: a job the
      stopped sweep never reached starts fresh rather than continuing another job's weights; else, for a single
      run, the newest checkpoint of the newest earlier run of this experiment (multirun jobs included);
    - a run folder: its newest checkpoint;
    - a file: itself.
    """
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        own = newest_checkpoint(current_run)
        if own is not None:
            return own
        if in_sweep:
            return None
        runs = [p.parent.parent for p in experiment_dir.glob("**/checkpoints/*.ckpt")
                if p.parent.parent.resolve() != current_run.resolve()]
        newest = [c for c in (newest_checkpoint(r) for r in set(runs)) if c is not None]
        if not newest:
            raise ValueError(f"ckpt_path=last is invalid here: no earlier run under {experiment_dir} has a "
                             "checkpoint; allowed: last (once a run of this experiment saved one), a run folder "
                             "or a checkpoint file")
        return max(newest, key=lambda p: p.stat().st_mtime_ns)
    path = Path(ckpt_path)
    if path.is_dir():
        ckpt = newest_checkpoint(path)
        if ckpt is None:
            raise ValueError(f"ckpt_path={ckpt_path} is invalid: the folder has no checkpoints/*.ckpt; allowed: "
                             "last, a run folder with checkpoints or a checkpoint file")
        return ckpt
    if not path.is_file():
        raise ValueError(f"ckpt_path={ckpt_path} is invalid; allowed: last, a run folder or an existing "
                         "checkpoint file")
    return path


def finished_metrics(run_dir: Path, max_steps: int | None) -> dict | None:
    """The scores of a job that already ran to its end: the metrics.json it wrote after `max_steps` steps, so a
    re-launched sweep leaves it as it is. None when it has none, or stopped short of `max_steps` (a raised
    budget: it trains on)."""
    file = run_dir / "metrics.json"
    if not max_steps or max_steps < 0 or not file.is_file():
        return None
    try:
        metrics = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged file: the job is run again
    step = metrics.get("train/global_step") if isinstance(metrics, dict) else None
    return metrics if isinstance(step, int) and step >= max_steps else None


def run_of(checkpoint: Path) -> Path:
    """A checkpoint lives in <run>/checkpoints/."""
    return checkpoint.resolve().parent.parent


def wandb_id_to_resume(checkpoint: Path | None) -> str | None:
    """The W&B run id of the run a checkpoint belongs to, so the resumed job logs into the same run."""
    return wandb_run_id(run_of(checkpoint)) if checkpoint is not None else None
