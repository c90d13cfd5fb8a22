"""One leaderboard across the families on circles (`evaluate.py benchmark=<run folders, sweep folders or globs>`).

Every run is scored by the same protocol (`protocol=circles_benchmark`: the prompts its data set trains on and
holds out, the same clips per prompt, 16 frames, the same generation seeds and metrics), whatever it trained on:
motion accuracy per group of motions (`GROUPS`) and held out, the classifier's prompt accuracy, FVD against real
clips of a seed no run trains on beside the real-vs-real FVD floor at the same N, training seconds (with the
stages it was built on where they are recorded), generation seconds per clip, and parameter counts. Runs are
grouped into entries by family and experiment (a recipe's training seeds): an entry's value is the mean over its
runs of each run's mean over generation seeds, with the std over runs (over generation seeds for a single run).
A family with no run is listed as missing. Writes benchmark.json, benchmark.md (a Markdown table) and
benchmark.html into the evaluate job's folder.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from t2vlab.data.circles import MOVE_DIRECTIONS, motion_of
from t2vlab.evaluation.circles_scoring import given_frames
from t2vlab.evaluation.compare import find_runs, plot_time_to_quality
from t2vlab.evaluation.protocols.base import EvalSet
from t2vlab.evaluation.sampling import sample
from t2vlab.runtime.atomic import atomic_path
from t2vlab.runtime.hardware import inference_autocast, inference_device

log = logging.getLogger(__name__)
FAMILIES = ("gan", "splitter", "magvit")
GROUPS = {"straight moves": tuple(MOVE_DIRECTIONS), "rotations": ("rotate-cw", "rotate-ccw"),
          "bounces": ("bounce-vertical", "bounce-horizontal"), "zigzags": ("zigzag-vertical", "zigzag-horizontal"),
          "size changes": ("shrink", "expand")}
COLUMNS = [*(f"motion/{g}" for g in GROUPS), "motion/held-out", "motion/all seen", "prompt_acc/seen", "fvd",
           "train_seconds", "seconds_per_clip"]


def group_accuracy(per_prompt: dict[str, float], heldout: set[str]) -> dict[str, float]:
    """Per-prompt accuracies -> the mean over each group's seen prompts, over the held-out prompts and over all
    seen prompts (a group with no seen prompt is absent)."""
    seen = {p: a for p, a in per_prompt.items() if p not in heldout}
    out = {}
    for group, motions in GROUPS.items():
        values = [a for p, a in seen.items() if motion_of(p) in motions]
        if values:
            out[f"motion/{group}"] = float(np.mean(values))
    held = [a for p, a in per_prompt.items() if p in heldout]
    if held:
        out["motion/held-out"] = float(np.mean(held))
    if seen:
        out["motion/all seen"] = float(np.mean(list(seen.values())))
    return out


def parameters(model) -> dict[str, int]:
    """Trained parameters, and the frozen ones the family generates through: MAGVIT's tokenizer (a frozen
    submodule), the Splitter's backbone (its networks and its diffusers pipeline's components)."""
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = {id(p): p.numel() for p in model.parameters() if not p.requires_grad}
    backbone = getattr(model, "backbone", None)
    if backbone is not None:
        modules = [v for v in vars(backbone).values() if isinstance(v, torch.nn.Module)]
        pipe = getattr(backbone, "pipe", None)
        modules += [v for v in getattr(pipe, "components", {}).values() if isinstance(v, torch.nn.Module)]
        frozen |= {id(p): p.numel() for m in modules for p in m.parameters()}
    return {"trained": trained, "frozen": sum(frozen.values())}


def stage_seconds(run: Path, model) -> dict[str, float]:
    """Training seconds of the run and of the stages it was built on, where their runs recorded them."""
    def seconds(folder: Path) -> float | None:
        file = folder / "metrics.json"
        return json.loads(file.read_text()).get("train/seconds") if file.is_file() else None

    out = {"run": seconds(run)}
    tokenizer = getattr(getattr(model, "hparams", {}), "get", lambda *_: None)("tokenizer_ckpt")
    if tokenizer:
        out["tokenizer"] = seconds(Path(tokenizer).resolve().parent.parent)
    return {k: v for k, v in out.items() if v is not None}


def score_run(run: Path, protocol_cfg: DictConfig, seeds: list[int], load_run,
              device: str | torch.device = "cpu") -> dict:
    """One run under the benchmark protocol, generated on `device`: per-seed metrics, their means, timing,
    parameters."""
    run_path, _, run_cfg, datamodule, model = load_run(str(run), None)
    model.to(device)
    protocol = instantiate(protocol_cfg)
    protocol.setup_from_run(run_cfg, datamodule, None)
    protocol.load_metrics()
    prompts, k = protocol.requests()
    heldout = set(protocol.heldout_prompts)
    per_seed, seconds_per_clip = [], []
    for seed in seeds:
        start = time.perf_counter()
        with inference_autocast(model.device):
            videos, texts = sample(model, prompts, k, protocol.num_frames, seed)
        seconds_per_clip.append((time.perf_counter() - start) / len(texts))
        ev = EvalSet(videos, texts, protocol.reference(texts, videos.shape[1]), heldout=heldout,
                     given_frames=given_frames(model))
        results, details = protocol.score(ev)
        values = group_accuracy(details["motion_acc/per_prompt"], heldout)
        if "prompt_acc/seen" in results:
            values["prompt_acc/seen"] = results["prompt_acc/seen"].value
        if "fvd" in results:
            values["fvd"] = results["fvd"].value
        per_seed.append({"seed": seed, **values, "failures": details.get("motion_acc/failures", {})})
    keys = [c for c in COLUMNS if c in per_seed[0]]
    means = {c: float(np.mean([s[c] for s in per_seed])) for c in keys}
    stages = stage_seconds(run_path, model)
    return {"run": str(run_path), "family": model.family,
            "experiment": OmegaConf.select(run_cfg, "experiment_name") or run_path.parent.name,
            "seed": OmegaConf.select(run_cfg, "seed"), "per_seed": per_seed, "means": means,
            "seconds_per_clip": float(np.mean(seconds_per_clip)), "generated_on": str(device), "train_seconds": stages,
            "parameters": parameters(model), "unavailable": {n: str(e) for n, e in protocol.unavailable.items()},
            "num_frames": protocol.num_frames, "clips_per_prompt": k, "prompts": len(prompts)}


def real_floor(protocol_cfg: DictConfig, datamodule_settings, prompts: list[str], clips_per_prompt: int,
               num_frames: int, seed: int) -> float | None:
    """FVD between two sets of real clips (the protocol's seed and `seed`) at the benchmark's N: the best a
    generator can score."""
    from t2vlab.evaluation.protocols.circles_protocol import CirclesProtocol

    metrics = OmegaConf.to_container(protocol_cfg.metrics, resolve=True)
    if "fvd" not in metrics:
        return None
    fvd = instantiate(metrics["fvd"])
    fvd.load()
    texts = [p for p in prompts for _ in range(clips_per_prompt)]
    a = instantiate(protocol_cfg, metrics={})
    a._setup(datamodule_settings, prompts, [])
    b = CirclesProtocol(clips_per_prompt, seed)
    b._setup(datamodule_settings, prompts, [])
    return fvd(a.reference(texts, num_frames), b.reference(texts, num_frames)).value


def leaderboard(scored: list[dict]) -> list[dict]:
    """Runs -> one entry per (family, experiment), families without a run listed as missing."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for s in scored:
        groups[(s["family"], s["experiment"])].append(s)
    entries = []
    for (family, experiment), runs in sorted(groups.items()):
        stats = {}
        for column in COLUMNS:
            if column == "seconds_per_clip":
                values = [r["seconds_per_clip"] for r in runs]
            elif column == "train_seconds":
                values = [sum(r["train_seconds"].values()) for r in runs if r["train_seconds"]]
            else:
                values = [r["means"][column] for r in runs if column in r["means"]]
            if not values:
                continue
            if len(runs) == 1 and column in runs[0]["means"]:  # one run: the spread over generation seeds
                spread = [s[column] for s in runs[0]["per_seed"]]
            else:
                spread = values
            stats[column] = (float(np.mean(values)), float(np.std(spread, ddof=1)) if len(spread) > 1 else None)
        first = runs[0]
        entries.append({"family": family, "experiment": experiment, "runs": [r["run"] for r in runs],
                        "stats": stats, "parameters": first["parameters"],
                        "stages": sorted({k for r in runs for k in r["train_seconds"]}),
                        "unavailable": first["unavailable"]})
    present = {e["family"] for e in entries}
    entries += [{"family": f, "experiment": None, "runs": [], "stats": {}, "missing": True}
                for f in FAMILIES if f not in present]
    return entries


def _cell(stat, digits: int = 2) -> str:
    if stat is None:
        return "-"
    mean, std = stat
    text = f"{mean:,.0f}" if abs(mean) >= 100 else f"{mean:.{digits}f}"
    if std is None:
        return text
    return text + (f" ± {std:,.0f}" if abs(mean) >= 100 else f" ± {std:.{digits}f}")


def markdown(entries: list[dict], floor: float | None, meta: dict) -> str:
    head = ["family", "experiment", "runs", *COLUMNS, "parameters (trained + frozen)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        if e.get("missing"):
            lines.append(f"| {e['family']} | missing | 0 |" + " - |" * (len(COLUMNS) + 1))
            continue
        p = e["parameters"]
        cells = [_cell(e["stats"].get(c), 3 if c == "seconds_per_clip" else 2) for c in COLUMNS]
        lines.append(f"| {e['family']} | `{e['experiment']}` | {len(e['runs'])} | " + " | ".join(cells)
                     + f" | {p['trained']:,} + {p['frozen']:,} |")
    notes = [f"FVD of real clips against real clips of another seed at the same N: "
             f"{floor:.1f}" if floor is not None else "FVD floor: not measured (no FVD metric)",
             f"{meta['clips_per_prompt']} clips per prompt, {meta['num_frames']} frames, generation seeds "
             f"{meta['seeds']}; {meta['machine']}, torch {meta['torch']}, {meta['threads']} threads; generated on "
             f"{meta.get('generated_on', 'cpu')}"]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def write_outputs(out: Path, entries: list[dict], scored: list[dict], floor: float | None, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(entries, floor, meta)
    for name, text in (("benchmark.md", table),
                       ("benchmark.json", json.dumps({"entries": entries, "runs": scored, "fvd_floor": floor,
                                                      "meta": meta}, indent=2, default=str)),
                       ("benchmark.html", _html(table, entries))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)


def _html(table: str, entries: list[dict]) -> str:
    rows = "".join(f"<li>{html.escape(e['family'])}: {html.escape(str(e.get('experiment') or 'missing'))}, "
                   f"{len(e['runs'])} runs: {html.escape(', '.join(e['runs']))}</li>" for e in entries)
    groups = {f"{e['family']}: {e['experiment']}": [Path(r) for r in e["runs"]] for e in entries if e["runs"]}
    png = plot_time_to_quality(groups)
    figure = "" if png is None else ("<h2>Time to quality</h2><img alt='time to quality' "
                                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>t2vlab circles benchmark</title></head><body>"
            f"<h1>Circles benchmark</h1><pre>{html.escape(table)}</pre>{figure}<h2>Runs</h2><ul>{rows}</ul>"
            "</body></html>")


def run_benchmark(cfg: DictConfig, load_run) -> dict:
    """evaluate.py benchmark=...: score every run found, then write the leaderboard."""
    targets = cfg.benchmark if isinstance(cfg.benchmark, list | tuple) or OmegaConf.is_list(cfg.benchmark) \
        else [cfg.benchmark]
    runs = sorted({r for t in targets for r in find_runs(str(t))})
    if not runs:
        raise ValueError(f"benchmark={list(targets)} holds no run folders (a folder with .hydra/config.yaml); "
                         "allowed: run folders, sweep folders or globs of them")
    seeds = list(cfg.seeds) if cfg.seeds is not None else [0, 1, 2]
    device = inference_device(str(cfg.get("device", "auto")))
    scored = []
    for i, run in enumerate(runs, 1):
        start = time.perf_counter()
        log.info("scoring run %d of %d: %s (generation seeds %s)", i, len(runs), run, seeds)
        scored.append(score_run(run, cfg.protocol, seeds, load_run, device))
        log.info("run %d of %d scored in %.0f s", i, len(runs), time.perf_counter() - start)
    first = scored[0]
    _, _, _, datamodule, _ = load_run(first["run"], None)
    prompts = list(dict.fromkeys([*datamodule.prompts, *datamodule.holdout_prompts]))
    floor = real_floor(cfg.protocol, datamodule.settings, prompts, first["clips_per_prompt"], first["num_frames"],
                       seed=cfg.protocol.real_seed + 1)
    meta = {"clips_per_prompt": first["clips_per_prompt"], "num_frames": first["num_frames"], "seeds": seeds,
            "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "generated_on": str(device)
            + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")}
    entries = leaderboard(scored)
    out = Path(cfg.paths.output_dir)
    write_outputs(out, entries, scored, floor, meta)
    print(markdown(entries, floor, meta))
    return {"entries": entries, "runs": scored, "fvd_floor": floor, "meta": meta}
