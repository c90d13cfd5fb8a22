"""The evaluation task: a trained run (folder or checkpoint) or a folder of videos with a manifest -> the
protocol's metrics, over one or more seeds -> a table, metrics.json and the run's W&B summary."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from t2vlab.evaluation.circles_scoring import given_frames
from t2vlab.evaluation.metrics.result import MetricResult
from t2vlab.evaluation.protocols.base import EvalSet, Protocol
from t2vlab.evaluation.reports import (
    aggregate_seeds,
    print_metrics,
    print_scores,
    print_skipped_videos,
    update_wandb_summary,
    versions,
)
from t2vlab.evaluation.sampling import read_listed_videos, read_manifest, sample, write_samples
from t2vlab.loggers.clips_table import clip_columns, merge_seeds
from t2vlab.runtime.checkpoint_file import load_checkpoint
from t2vlab.runtime.hardware import inference_autocast, inference_device
from t2vlab.tasks.common import (
    apply_generation,
    build_data_and_backbone,
    build_model,
    instantiate,
    pin_to_checkpoint,
    write_json,
)
from t2vlab.tasks.preflight import BadInput, check_positive

log = logging.getLogger(__name__)


def locate_run(run_dir: str | None, ckpt_path: str | None) -> tuple[Path, Path]:
    """(run folder, checkpoint) from either; a checkpoint lives in <run>/checkpoints/."""
    if ckpt_path:
        ckpt = Path(ckpt_path)
        if not ckpt.is_file():
            raise ValueError(f"ckpt_path={ckpt_path} is invalid; allowed: an existing checkpoint file")
        run = Path(run_dir) if run_dir else ckpt.resolve().parent.parent
    else:
        run = Path(run_dir)
        ckpt = run / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            found = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
            raise ValueError(f"run_dir={run_dir} has no checkpoints/last.ckpt; pass ckpt_path=, one of: "
                             f"{found or 'none found'}")
    return run, ckpt


def load_run(run_dir: str | None, ckpt_path: str | None, overrides: list[str] | None = None):
    """Rebuild a run's data module and model from its saved config and load the checkpoint's weights. The
    checkpoint is read before the run's config is looked for, so a damaged file is named as such. `overrides`
    (dotlist, e.g. ["backbone.path=..."]) change the saved config before anything is built."""
    run, ckpt = locate_run(run_dir, ckpt_path)
    state = load_checkpoint(ckpt, f"ckpt_path={ckpt_path}" if ckpt_path else f"run_dir={run_dir}")
    if not (run / ".hydra" / "config.yaml").is_file():
        given = f"run_dir={run}" if run_dir else f"ckpt_path={ckpt_path} (its run folder {run})"
        raise ValueError(f"{given} is invalid; allowed: a folder written by train.py (it holds .hydra/config.yaml)")
    run_cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    if overrides:
        run_cfg = OmegaConf.merge(run_cfg, OmegaConf.from_dotlist(overrides))
    run_cfg = pin_to_checkpoint(run_cfg, state)
    datamodule, backbone = build_data_and_backbone(run_cfg)
    model = build_model(run_cfg, datamodule.vocab, backbone, datamodule)
    model.load_state_dict(state["state_dict"])
    return run, ckpt, run_cfg, datamodule, model.eval()


def _check_source(cfg: DictConfig) -> list[int]:
    has_run, has_videos = bool(cfg.run_dir or cfg.ckpt_path), bool(cfg.videos)
    if has_run == has_videos:
        raise ValueError("pass exactly one of run_dir=<training run> (or ckpt_path=<checkpoint>) and "
                         "videos=<folder with manifest.jsonl>" + ("; both were given" if has_run else ""))
    seeds = list(cfg.seeds) if cfg.seeds is not None else [cfg.seed]
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds={cfg.seeds} is invalid; allowed: a non-empty list of integers, e.g. [0,1,2]")
    return seeds


def evaluate(cfg: DictConfig) -> dict:
    if cfg.get("compare"):
        return compare_runs(cfg)
    if cfg.get("benchmark"):
        return benchmark_runs(cfg)
    # everything that can be wrong with the input is found here, before any generation or scoring
    try:
        check_positive(cfg, ["clips_per_prompt", "num_frames"])
        seeds = _check_source(cfg)
        device = inference_device(str(cfg.get("device", "auto")))
        protocol: Protocol = instantiate(cfg.protocol)
        if cfg.clips_per_prompt and hasattr(protocol, "clips_per_prompt"):
            protocol.clips_per_prompt = cfg.clips_per_prompt
        skipped: list[dict] = []  # damaged videos of a folder, left out of the scores
        if cfg.videos:
            folder, rows = read_manifest(cfg.videos)
            rows, folder_videos, skipped = read_listed_videos(folder, rows)
            protocol.setup_from_videos(rows, folder_videos)
            source = {"videos": str(cfg.videos)}
            model = run = run_cfg = None
        else:
            run, ckpt, run_cfg, datamodule, model = load_run(cfg.run_dir, cfg.ckpt_path)
            if not model.generates_video:  # a tokenizer or backbone: it measures itself
                return _measure(model, datamodule, run, ckpt, Path(cfg.paths.output_dir))
            model.to(device)
            apply_generation(model, cfg.get("generation"))
            protocol.setup_from_run(run_cfg, datamodule, list(cfg.prompts) if cfg.prompts else None)
            source = {"run_dir": str(run), "checkpoint": str(ckpt)}
        num_frames = cfg.num_frames or protocol.num_frames
        if cfg.videos:
            order = _match(protocol, rows, skipped)
            videos = _stack([folder_videos[i] for i in order], num_frames)
            texts = [rows[i]["prompt"] for i in order]
    except ValueError as e:
        raise BadInput(str(e)) from None
    if cfg.videos and len(seeds) > 1:
        log.warning("seeds=%s: a video folder is scored once (seeds choose generations, and these are given)",
                    seeds)
        seeds = seeds[:1]
    protocol.load_metrics()
    for why in protocol.unavailable.values():
        log.warning("%s", why)

    out = Path(cfg.paths.output_dir)
    per_seed: list[dict[str, MetricResult]] = []
    details: dict = {}
    clips: list[tuple[dict[str, list], list[Path] | None]] = []  # per seed: the clips table's columns, the GIFs
    for i, seed in enumerate(seeds, 1):
        log.info("seed %d (%d of %d): %s, then scoring with %s", seed, i, len(seeds),
                 "generating" if model is not None else "reading the videos", ", ".join(protocol.metrics))
        if model is not None:
            prompts, k = protocol.requests()
            with inference_autocast(model.device):
                videos, texts = sample(model, prompts, k, num_frames, seed)
        generated = protocol.prepare_generated(videos)
        ev = EvalSet(generated, texts, protocol.reference(texts, generated.shape[1]),
                     heldout=set(protocol.heldout_prompts), given_frames=given_frames(model))
        results, seed_details = protocol.score(ev)
        per_clip = {k.removeprefix("clips/"): seed_details.pop(k) for k in list(seed_details) if k.startswith("clips/")}
        per_seed.append(results)
        details[str(seed)] = seed_details
        gifs = None
        if cfg.write_videos and model is not None:
            folder = out / "samples" / f"seed_{seed}"
            rows = write_samples(videos, texts, folder, cfg.fps, heldout=protocol.heldout_prompts,
                                 fields={"seed": seed, "num_frames": videos.shape[1], **source})
            gifs = [folder / r["path"] for r in rows]
        if "verdict" in per_clip:  # a protocol that judges each clip (circles)
            columns = clip_columns(texts, protocol.heldout_prompts, per_clip.pop("verdict"),
                                   per_clip.pop("verdict_predicted", None), per_clip)
            clips.append(({"seed": [seed] * len(texts), **columns}, gifs))

    metrics = aggregate_seeds(per_seed) | {name: e.as_dict() for name, e in protocol.unavailable.items()}
    report = {"protocol": protocol.name, "source": source, "seeds": seeds, "metrics": metrics,
              "details": details, "settings": protocol.settings() | {"num_frames": num_frames},
              "versions": versions()}
    if cfg.videos:
        report["skipped_videos"] = skipped
    write_json(out / "metrics.json", report)
    print_metrics(metrics, title=f"protocol={protocol.name}: {source.get('checkpoint') or source['videos']}",
                  seeds=seeds)
    print_skipped_videos(skipped)
    log.info("metrics written to %s", out / "metrics.json")
    if run is not None and cfg.wandb_summary:
        update_wandb_summary(run, metrics, protocol.name, OmegaConf.select(run_cfg, "logger.project") or "t2vlab",
                             clips=merge_seeds(clips) if clips else None)
    return report


def _measure(model, datamodule, run: Path, ckpt: Path, out: Path) -> dict:
    """A trained model that is not a video generator (the MAGVIT tokenizer) -> its own measures."""
    try:
        metrics = model.measure(datamodule, out)
    except NotImplementedError:
        raise BadInput(f"run_dir={run} holds a {type(model).__name__}: it neither generates videos nor measures "
                       "itself; allowed: a run of a video generator or of the MAGVIT tokenizer") from None
    report = {"source": {"run_dir": str(run), "checkpoint": str(ckpt)}, "metrics": metrics, "versions": versions()}
    write_json(out / "metrics.json", report)
    print_scores(metrics, title=f"{type(model).__name__}: {ckpt}")
    log.info("metrics written to %s", out / "metrics.json")
    return report


def compare_runs(cfg: DictConfig) -> dict:
    """compare=<sweep folder or glob>: the runs' own records -> table, plots and report.html, no network."""
    from t2vlab.evaluation.compare import compare

    out = Path(cfg.paths.output_dir)
    try:
        result = compare(str(cfg.compare), out)  # looks for the runs first: an empty target costs nothing
    except ValueError as e:
        raise BadInput(str(e)) from None
    log.info("comparison of %d configurations written to %s", len(result["rows"]), out / "report.html")
    return result


def benchmark_runs(cfg: DictConfig) -> dict:
    """benchmark=<runs>: every run scored by the same fixed-frame protocol, then one leaderboard."""
    from t2vlab.evaluation.benchmark import run_benchmark

    if OmegaConf.select(cfg, "protocol.num_frames") is None:
        raise BadInput("benchmark= needs a protocol that scores every run at the same frame count; allowed: "
                       "protocol=circles_benchmark")
    try:
        return run_benchmark(cfg, load_run)
    except ValueError as e:
        raise BadInput(str(e)) from None


def _match(protocol: Protocol, rows: list[dict], skipped: list[dict]) -> list[int]:
    """The protocol's order of the readable videos; a clip it needs that was skipped as damaged is named."""
    try:
        return protocol.match(rows)
    except ValueError as e:
        if not skipped:
            raise
        names = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        raise ValueError(f"{e} (skipped as damaged: {names}{'; ...' if len(skipped) > 3 else ''})") from None


def _stack(videos: list[torch.Tensor], num_frames: int) -> torch.Tensor:
    short = [len(v) for v in videos if len(v) < num_frames]
    if short:
        raise ValueError(f"num_frames={num_frames} is invalid for these videos; allowed: <= {min(short)} "
                         "(the shortest video's length)")
    sizes = {tuple(v.shape[1:]) for v in videos}
    if len(sizes) > 1:
        raise ValueError(f"the videos differ in size ({sorted(sizes)[:3]}); allowed: one frame size per folder")
    return torch.stack([v[:num_frames] for v in videos])
