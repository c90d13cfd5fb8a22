"""The evaluation's clips as a W&B table: one row per clip with its prompt, split, the scorer's verdict, the other
per-clip scores, and the clip itself (the GIF the evaluation wrote; from a file W&B needs no moviepy)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytorch_lightning.loggers import Logger, WandbLogger


def clip_columns(prompts: list[str], heldout: Iterable[str], verdicts: list[str],
                 predicted_verdicts: list[str] | None = None, scores: dict[str, list] | None = None) -> dict[str, list]:
    """Columns in clip order. `clip` numbers the clips of a prompt as write_samples names their files;
    `verdict` is "pass" or why the clip fails, `motion_acc` 1 or 0 (a prompt's mean is its motion_acc/prompt).
    `predicted_verdicts`: the verdicts on the generated frames alone (clips that start with given frames)."""
    heldout = set(heldout)
    columns: dict[str, list] = {
        "prompt": list(prompts),
        "clip": _clip_numbers(prompts),
        "split": ["held-out" if p in heldout else "seen" for p in prompts],
        "verdict": [v or "pass" for v in verdicts],
        "motion_acc": [float(not v) for v in verdicts],
    }
    if predicted_verdicts:
        columns["verdict_predicted"] = [v or "pass" for v in predicted_verdicts]
        columns["motion_acc_predicted"] = [float(not v) for v in predicted_verdicts]
    for name, values in (scores or {}).items():
        columns[name] = list(values)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the clip columns differ in length: {lengths}")
    return columns


def _clip_numbers(prompts: list[str]) -> list[int]:
    counts: dict[str, int] = {}
    numbers = []
    for prompt in prompts:
        counts[prompt] = counts.get(prompt, -1) + 1
        numbers.append(counts[prompt])
    return numbers


def merge_seeds(parts: list[tuple[dict[str, list], list[Path] | None]]
                ) -> tuple[dict[str, list], list[Path] | None]:
    """Several seeds' (columns, GIFs) as one: the rows one after the other; GIFs only when every seed wrote them."""
    columns = {name: [v for part, _ in parts for v in part[name]] for name in parts[0][0]}
    videos = None if any(gifs is None for _, gifs in parts) else [p for _, gifs in parts for p in gifs]
    return columns, videos


def clips_table(columns: dict[str, list], videos: list[Path] | None = None):
    """A wandb.Table of the columns, with a `video` column when the clips' GIF files are given."""
    import wandb

    names = list(columns)
    rows = [list(row) for row in zip(*columns.values(), strict=True)]
    if videos is not None:
        names.append("video")
        for row, path in zip(rows, videos, strict=True):
            row.append(wandb.Video(str(path), format=Path(path).suffix.lstrip(".")))
    return wandb.Table(columns=names, data=rows)


def log_clips_table(loggers: list[Logger], key: str, columns: dict[str, list], videos: list[Path] | None,
                    step: int) -> None:
    """Log the table to the run's W&B logger; the other loggers have no tables and are skipped."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_metrics({key: clips_table(columns, videos)}, step=step)
