"""Compare logged runs offline: one row per configuration (the runs' overrides without the seed), mean ± std
over seeds, plots, and one self-contained HTML report. Reads only what the runs wrote: .hydra/, metrics.json,
history.jsonl, samples/."""

from __future__ import annotations

import base64
import csv
import glob
import html
import io
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure  # the object API: no pyplot state, no display backend
from rich.console import Console
from rich.table import Table

from t2vlab.callbacks.metric_history import read_history
from t2vlab.data.video_decode import DamagedVideo
from t2vlab.data.video_io import read_video
from t2vlab.runtime.atomic import atomic_path

log = logging.getLogger(__name__)

# overrides that say where or how a job ran, not what was trained: they do not split configurations
NOT_CONFIGURATION = ("seed", "hydra.", "logger", "paths.", "print_config", "tags", "ckpt_path", "launcher",
                     "hardware", "callbacks.", "evaluation.")
SUMMARY = ("motion_acc/seen_moves", "motion_acc/seen_all", "motion_acc/heldout", "train/seconds")
CURVES = ("train/loss_d", "train/loss_g")


@dataclass
class Run:
    path: Path
    config: dict
    overrides: list[str]
    metrics: dict | None  # None: the run did not finish
    error: str = ""

    @property
    def seed(self):
        return self.config.get("seed")

    configuration: str = ""  # set by label_configurations: the overrides that tell it apart


@dataclass
class Row:
    configuration: str
    runs: list[Run]
    stats: dict[str, tuple[float, float | None, int]] = field(default_factory=dict)  # metric -> mean, std, N

    @property
    def finished(self) -> list[Run]:
        return [r for r in self.runs if r.metrics is not None]


def find_runs(target: str) -> list[Path]:
    """Run folders (those holding .hydra/config.yaml) in a folder, or matched by a glob, at any depth; a run
    folder inside another (an evaluate.py scoring written into the run it scored) is not a run of its own here
    (a glob that names it directly still finds it)."""
    matches = [Path(p) for p in sorted(glob.glob(target))] if any(c in target for c in "*?[") else [Path(target)]
    found: set[Path] = set()
    for m in matches:
        if (m / ".hydra" / "config.yaml").is_file():
            found.add(m)
        elif m.is_dir():
            inside = {p.parent.parent for p in m.rglob(".hydra/config.yaml")}
            found.update(r for r in inside if not any(a in inside for a in r.parents))
    return sorted(found)


def load_run(path: Path) -> Run:
    config = yaml.safe_load((path / ".hydra" / "config.yaml").read_text()) or {}
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) or [] if overrides_file.is_file() else []
    metrics_file = path / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    error = ""
    if metrics is None:
        failed = path / "FAILED"
        error = failed.read_text().strip().splitlines()[-1] if failed.is_file() else "no metrics.json: not finished"
    return Run(path, config, list(overrides), metrics, error)


def label_configurations(runs: list[Run]) -> list[str]:
    """Name each run's configuration by its overrides, leaving out the seed, how it ran (NOT_CONFIGURATION) and
    what every run shares; returns the shared overrides."""
    kept = [{o for o in r.overrides if not o.lstrip("+~").startswith(NOT_CONFIGURATION)} for r in runs]
    common = set.intersection(*kept) if kept else set()
    for run, overrides in zip(runs, kept, strict=True):
        run.configuration = " ".join(sorted(overrides - common)) or "(defaults)"
    return sorted(common)


def summary_keys(runs: list[Run], metric: str) -> list[str]:
    """The table's columns: the optimised metric, SUMMARY, then the SUMMARY metrics of any generation variant the
    runs were also scored with (train.py evaluation.variants, logged as <variant>/<metric>)."""
    keys = [metric, *[k for k in SUMMARY if k != metric]]
    variant_keys = {k for r in runs if r.metrics for k in r.metrics
                    if "/" in k and k.split("/", 1)[1] in keys and k.split("/", 1)[0] not in ("motion_acc", "train")}
    return keys + sorted(variant_keys, key=lambda k: (k.split("/", 1)[0], keys.index(k.split("/", 1)[1])))


def summarise(runs: list[Run], metric: str, direction: str) -> list[Row]:
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.configuration].append(run)
    rows = [Row(name, group) for name, group in groups.items()]
    for row in rows:
        for key in summary_keys(row.runs, metric):
            values = [float(r.metrics[key]) for r in row.finished if isinstance(r.metrics.get(key), int | float)]
            if values:
                std = float(np.std(values, ddof=1)) if len(values) > 1 else None
                row.stats[key] = (float(np.mean(values)), std, len(values))
    worst = -np.inf if direction == "maximize" else np.inf
    rows.sort(key=lambda r: r.stats.get(metric, (worst,))[0], reverse=direction == "maximize")
    return rows


def _fmt(stat: tuple[float, float | None, int] | None) -> str:
    if stat is None:
        return "-"
    mean, std, _ = stat
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def swept_keys(runs: list[Run]) -> dict[str, list[str]]:
    """Override keys that take more than one value across the runs (the seed included)."""
    values: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        for o in run.overrides:
            key, _, value = o.lstrip("+~").partition("=")
            if not key.startswith(("hydra.", "paths.")):
                values[key].add(value)
    return {k: sorted(v) for k, v in values.items() if len(v) > 1}


def plot_metric_vs_key(runs: list[Run], key: str, values: list[str], metric: str) -> bytes:
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for i, value in enumerate(values):
        ys = [float(r.metrics[metric]) for r in runs if r.metrics and metric in r.metrics
              and f"{key}={value}" in [o.lstrip("+~") for o in r.overrides]]
        ax.scatter([i] * len(ys), ys, alpha=0.6, color="tab:blue")
        if ys:
            ax.scatter([i], [np.mean(ys)], marker="_", s=600, color="black")
    ax.set_xticks(range(len(values)), values, rotation=20)
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by {key} (dots: runs, bar: mean)")
    return _png(fig)


def plot_learning_curves(rows: list[Row]) -> bytes | None:
    fig = Figure(figsize=(5 * len(CURVES), 3.2))
    axes = fig.subplots(1, len(CURVES), squeeze=False)
    drew = False
    for row in rows:
        histories = [read_history(r.path / "history.jsonl") for r in row.runs]
        for ax, key in zip(axes[0], CURVES, strict=True):
            by_step: dict[int, list[float]] = defaultdict(list)
            for history in histories:
                for entry in history:
                    if isinstance(entry.get(key), int | float):
                        by_step[entry["step"]].append(entry[key])
            if by_step:
                steps = sorted(by_step)
                ax.plot(steps, [np.mean(by_step[s]) for s in steps], label=row.configuration)
                drew = True
    for ax, key in zip(axes[0], CURVES, strict=True):
        ax.set_title(f"{key} (mean over seeds)")
        ax.set_xlabel("optimiser step")
    if not drew:
        return None
    axes[0][0].legend(fontsize=7)
    return _png(fig)


def plot_time_to_quality(groups: dict[str, list[Path]], metric: str = "motion_acc/seen_all") -> bytes | None:
    """Per configuration (label -> run folders): the motion accuracy of the samples drawn during training against
    the training seconds at which they were drawn (samples/scores.jsonl), the mean over runs round by round."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    drew = False
    for label, paths in groups.items():
        rounds: dict[int, list[tuple[float, float]]] = defaultdict(list)
        for path in paths:
            rows = read_history(path / "samples" / "scores.jsonl")
            for i, row in enumerate(r for r in rows if isinstance(r.get(metric), int | float)):
                rounds[i].append((row["train_seconds"], row[metric]))
        if rounds:
            points = [np.mean(rounds[i], axis=0) for i in sorted(rounds)]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
            drew = True
    if not drew:
        return None
    ax.set_xlabel("training seconds")
    ax.set_ylabel(f"samples' {metric}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("time to quality (mean over seeds)")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_samples(rows: list[Row], prompts_per_row: int = 3) -> bytes | None:
    """For each configuration, the first evaluation clip of a few prompts from its first finished run."""
    strips = []
    for row in rows:
        run = next(iter(row.finished), None)
        manifest = run.path / "samples" / "manifest.jsonl" if run else None
        if manifest is None or not manifest.is_file():
            continue
        entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        entries = [e for e in entries if e.get("tag") == "evaluation"] or entries
        chosen = list({e["prompt"]: e for e in reversed(entries)}.values())[::-1][:prompts_per_row]
        clips, shown = [], []
        for entry in chosen:  # a picture of samples: a damaged one is left out, with a warning
            try:
                clips.append(read_video(manifest.parent / entry["path"]))
                shown.append(entry)
            except (DamagedVideo, FileNotFoundError) as e:
                log.warning("sample %s left out of the comparison's picture: %s", manifest.parent / entry["path"], e)
        chosen = shown
        if clips:
            frames = [np.concatenate(list(c.permute(0, 2, 3, 1).numpy()), axis=1) for c in clips]
            width = max(f.shape[1] for f in frames)
            frames = [np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0)), constant_values=1.0) for f in frames]
            strips.append((row.configuration, [e["prompt"] for e in chosen], np.concatenate(frames, axis=0)))
    if not strips:
        return None
    fig = Figure(figsize=(12, 1.3 * sum(s[2].shape[0] for s in strips) / 64 + 0.6))
    axes = fig.subplots(len(strips), 1, squeeze=False)
    for ax, (name, prompts, image) in zip(axes[:, 0], strips, strict=True):
        ax.imshow(image.clip(0, 1))
        ax.set_title(f"{name}: {'; '.join(prompts)}", fontsize=8, loc="left")
        ax.axis("off")
    return _png(fig)


def _html(rows: list[Row], failed: list[Run], metric: str, direction: str, images: dict[str, bytes],
          source: str, common: list[str], keys: list[str]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["configuration", "N", *keys])
    body = "".join(
        "<tr>" + f"<td>{html.escape(r.configuration)}</td><td>{len(r.finished)}"
        + (f" (+{len(r.runs) - len(r.finished)} failed)" if len(r.runs) > len(r.finished) else "") + "</td>"
        + "".join(f"<td>{_fmt(r.stats.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    failures = "".join(f"<li><code>{html.escape(str(r.path))}</code>: {html.escape(r.error)}</li>" for r in failed)
    figures = "".join(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' "
                      f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>" for title, png in images.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>t2vlab comparison</title><style>
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse}}
th,td{{border:1px solid #bbb;padding:4px 10px;text-align:right}} th{{background:#eee}}
td:first-child,th:first-child{{text-align:left;font-family:monospace}} img{{max-width:100%;display:block}}
</style></head><body><h1>Run comparison</h1>
<p>{html.escape(source)}: {sum(len(r.runs) for r in rows)} runs in {len(rows)} configurations, sorted by
<b>{html.escape(metric)}</b> ({direction}); mean ± std over seeds, N finished runs.
Shared by every run: <code>{html.escape(" ".join(common) or "nothing")}</code>.</p>
<table><tr>{head}</tr>{body}</table>
{f"<h2>Failed or unfinished runs</h2><ul>{failures}</ul>" if failed else ""}
<h2>Plots</h2>{figures}</body></html>"""


def compare(target: str, out_dir: Path, console: Console | None = None) -> dict:
    """Write comparison.csv/json, plots/*.png and report.html into out_dir; return the table as a dict."""
    paths = find_runs(target)
    if not paths:
        raise ValueError(f"compare={target} is invalid: no runs found; allowed: a sweep or run folder, or a glob, "
                         "with run folders holding .hydra/config.yaml")
    runs = [load_run(p) for p in paths]
    common = label_configurations(runs)
    first = runs[0].config
    metric = first.get("optimized_metric") or "motion_acc/seen_all"
    direction = first.get("optimized_direction") or "maximize"
    rows = summarise(runs, metric, direction)
    keys = summary_keys(runs, metric)
    failed = [r for r in runs if r.metrics is None]

    images: dict[str, bytes] = {}
    for key, values in swept_keys(runs).items():
        if key != "seed":
            images[f"{metric} by {key}"] = plot_metric_vs_key(runs, key, values, metric)
    quality = plot_time_to_quality({r.configuration: [x.path for x in r.runs] for r in rows})
    for title, png in (("learning curves", plot_learning_curves(rows)), ("time to quality", quality),
                       ("samples", plot_samples(rows))):
        if png is not None:
            images[title] = png
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    for title, png in images.items():
        (out_dir / "plots" / f"{''.join(c if c.isalnum() else '_' for c in title)}.png").write_bytes(png)

    table = [{"configuration": r.configuration, "n": len(r.finished), "failed": len(r.runs) - len(r.finished),
              "runs": [str(x.path) for x in r.runs],
              **{k: {"mean": m, "std": s, "n": n} for k, (m, s, n) in r.stats.items()}} for r in rows]
    result = {"source": target, "optimized_metric": metric, "direction": direction, "shared_overrides": common,
              "rows": table,
              "failed": [{"path": str(r.path), "error": r.error} for r in failed]}
    with atomic_path(out_dir / "comparison.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_path(out_dir / "comparison.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["configuration", "n", "failed", *[f"{k} {p}" for k in keys for p in ("mean", "std")]])
        for r in rows:
            writer.writerow([r.configuration, len(r.finished), len(r.runs) - len(r.finished),
                             *[v for k in keys for v in (r.stats.get(k) or ("", "", 0))[:2]]])
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(_html(rows, failed, metric, direction, images, target, common, keys))

    view = Table(title=f"{target}: sorted by {metric} ({direction}), mean ± std over seeds")
    shown = [metric, *[k for k in keys if k.endswith("/" + metric)], "train/seconds"]
    for column in ("configuration", "N", *shown):
        view.add_column(column)
    for r in rows:
        view.add_row(r.configuration, str(len(r.finished)), *[_fmt(r.stats.get(k)) for k in shown])
    (console or Console()).print(view)
    return result
