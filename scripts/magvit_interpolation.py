"""Frame interpolation of a trained MAGVIT circles run against frame prediction on the same real clips: does the
generated middle move from the given first frame to the given last one?

    .venv/bin/python scripts/magvit_interpolation.py <run folder> [--seeds 1 2 3] [--clips 16]

For each seed, --clips real clips per prompt (the run's frame count, 16 for the circles experiments; the data
set's prompts and the held-out one, rendered with a seed the training set never used) go through `predict` twice:
frame_interpolation (first and last frame given) and frame_prediction (first frame given; its last frame is then
replaced by the real one, so that both tasks are judged by the same rule). Reported per task, mean ± std over seeds:
the fraction of straight-move clips whose generated frames lie between the two given discs
(`evaluation/metrics/interpolation_path.py`), seen and held out; the median gap between the last generated disc and
the real last one over all prompts; and the circles scorer's motion accuracy of the whole clips. Written to
<run>/interpolation.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from t2vlab.data.circles import DEFAULT_HOLDOUT, MOVE_DIRECTIONS, motion_of
from t2vlab.evaluation.circles_scoring import circles_settings
from t2vlab.evaluation.metrics.circle_verdicts import CircleLimits
from t2vlab.evaluation.metrics.interpolation_path import interpolation_path
from t2vlab.evaluation.metrics.motion_accuracy import motion_accuracy, summarize
from t2vlab.evaluation.reconstruction import heldout_clips
from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.evaluate import load_run

TASKS = ("frame_interpolation", "frame_prediction")


def measure(model, settings, prompts: list[str], heldout: list[str], clips: int, seed: int, batch: int = 64) -> dict:
    """One seed: both tasks on the same real clips -> {task: {metric: value}}."""
    limits = CircleLimits.from_settings(settings)
    real, texts = heldout_clips(settings, clips * len(prompts), settings.seed + 7919 * (seed + 1), prompts)
    moves = np.array([motion_of(p) in MOVE_DIRECTIONS for p in texts])
    seen = np.array([p not in heldout for p in texts])
    out = {}
    for task in TASKS:
        videos = torch.cat([model.predict(real[i : i + batch], task, texts[i : i + batch], seed + i).cpu()
                            for i in range(0, len(real), batch)])
        videos[:, -1] = real[:, -1]  # prediction never saw it; interpolation returns it as given
        paths = [interpolation_path(p, v, limits) for v, p in zip(videos, texts, strict=True)]
        between = np.array([bool(p.lies_between) for p in paths])
        gaps = [p.end_gap for p in paths if not np.isnan(p.end_gap)]
        out[task] = {
            "between/seen_moves": float(between[moves & seen].mean()) if (moves & seen).any() else None,
            "between/heldout": float(between[moves & ~seen].mean()) if (moves & ~seen).any() else None,
            "end_gap_px/median": float(np.median(gaps)) if gaps else None,  # None: no clip has both discs
            "end_gap_px/no_blob": len(paths) - len(gaps),
            **summarize(motion_accuracy(videos, texts, settings), settings.prompts),  # motion_acc/<group>
        }
    out["clips"] = len(real)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a MAGVIT transformer run folder (train.py experiment=magvit_circles*)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--clips", type=int, default=16, help="real clips per prompt and seed")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error(f"--clips={args.clips} is invalid; allowed: >= 1")
    register_resolvers()
    run, _, _, datamodule, model = load_run(args.run, None)
    if not hasattr(model, "predict"):
        parser.error(f"run {run} is a {type(model).__name__}; allowed: a MAGVIT transformer run")
    settings = circles_settings(datamodule)
    if settings is None:
        parser.error(f"run {run} did not train on synthetic circles; allowed: a circles run")
    heldout = [p for p in DEFAULT_HOLDOUT if p not in settings.prompts]
    prompts = [*settings.prompts, *heldout]
    start = time.perf_counter()
    per_seed = {str(seed): measure(model, settings, prompts, heldout, args.clips, seed) for seed in args.seeds}
    summary = {}
    for task in TASKS:
        for key in per_seed[str(args.seeds[0])][task]:
            values = [v for s in args.seeds if (v := per_seed[str(s)][task][key]) is not None]
            if not values:
                continue
            row = {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
                   "seeds": len(values)}
            summary[f"{task}/{key}"] = row
            print(f"{task:>20} {key:<22} {row['mean']:7.3f} ± {row['std']:.3f} ({row['seeds']} seeds)")
    result = {"run": str(run), "seeds": args.seeds, "clips_per_prompt": args.clips, "frames": settings.num_frames,
              "prompts": len(prompts), "per_seed": per_seed, "summary": summary,
              "seconds": round(time.perf_counter() - start, 1)}
    (Path(run) / "interpolation.json").write_text(json.dumps(result, indent=2))
    print(f"{len(args.seeds)} seeds x {per_seed[str(args.seeds[0])]['clips']} clips in {result['seconds']} s; "
          f"written to {Path(run) / 'interpolation.json'}")
    return result


if __name__ == "__main__":
    main()
