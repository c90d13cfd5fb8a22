"""Score saved circles runs again with the current motion scorer, in place.

    .venv/bin/python scripts/rescore_circles.py outputs/splitter_table [more runs or sweep folders ...]
    .venv/bin/python scripts/rescore_circles.py outputs/splitter_ablations --backbone data/backbones/circles_unclip

For every training run found (a folder with .hydra/config.yaml and checkpoints/last.ckpt, at any depth) whose
metrics.json was not written by the current scorer: rebuild the model from its checkpoint (as evaluate.py does),
sample again the clips its own evaluation sampled (evaluation.seed, clips_per_prompt and num_frames, and each of
evaluation.variants), score them, and rewrite metrics.json with the new motion_acc values. The values they
replace are kept under "superseded": {<scorer that wrote them>: {key: value}}; the samples on disk stay.
With --backbone a Splitter run is decoded by the backbone in that folder instead of the one it trained on (a
backbone whose decoder alone changed: the embeddings the Splitter learned are the same), and rescored even when
its scorer is current; the replaced values are kept under "<scorer> decoded by <identity of the old backbone>".
`evaluate.py compare=<folder>` then tables the runs on the current scorer.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from t2vlab.evaluation.circles_scoring import circles_settings, evaluate_circles
from t2vlab.evaluation.compare import find_runs
from t2vlab.evaluation.metrics.motion_accuracy import SCORER
from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.common import generation_settings, write_json
from t2vlab.tasks.evaluate import load_run

log = logging.getLogger("rescore")
OLD_SCORER = "circles-v1"  # what wrote metrics.json before the scorer recorded itself
MOTION_KEYS = ("motion_acc/", "motion_acc_predicted/")


def rescore(run: Path, backbone: str | None = None) -> dict | None:
    """The run's metrics.json rewritten with the current scorer's values; None when there is nothing to do."""
    metrics_file = run / "metrics.json"
    if not (run / "checkpoints" / "last.ckpt").is_file() or not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    if backbone is not None and cfg.get("backbone") is None:
        return None
    if metrics.get("motion_acc/scorer") == SCORER and backbone is None:
        return None
    ev = cfg.evaluation
    _, _, _, datamodule, model = load_run(str(run), None, [f"backbone.path={backbone}"] if backbone else None)
    settings = circles_settings(datamodule)
    if settings is None:
        return None
    old = metrics.get("motion_acc/scorer", OLD_SCORER)
    if backbone is not None:
        old = f"{old} decoded by {metrics.get('backbone/identity', 'the backbone it trained on')}"
    variants = ev.get("variants")
    variants = OmegaConf.to_container(variants, resolve=True) if variants is not None else {}
    fresh: dict = {}
    for name, overrides in [("", {}), *variants.items()]:
        with generation_settings(model, overrides, f"evaluation.variants.{name}" if name else "generation"):
            report = evaluate_circles(model, datamodule.prompts, datamodule.holdout_prompts, ev.clips_per_prompt,
                                      ev.num_frames, ev.seed, settings)
        fresh |= {f"{name}/{k}" if name else k: v for k, v in report.metrics().items()}
    prefixes = [*MOTION_KEYS] + [f"{n}/{p}" for n in variants for p in MOTION_KEYS]
    replaced = {k: v for k, v in metrics.items() if k.startswith(tuple(prefixes))}
    metrics = {k: v for k, v in metrics.items() if k not in replaced} | fresh | {"motion_acc/scorer": SCORER}
    if backbone is not None:
        metrics["backbone/identity"] = model.backbone.identity
    metrics.setdefault("superseded", {})[old] = replaced
    write_json(metrics_file, metrics)
    return metrics


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="run folders, sweep folders or globs")
    parser.add_argument("--backbone", default=None, help="decode Splitter runs with the backbone in this folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    register_resolvers()
    done = []
    for target in args.targets:
        for run in find_runs(target):
            start = time.perf_counter()
            if rescore(run, args.backbone) is not None:
                done.append(run)
                log.info("rescored %s (%.0f s)", run, time.perf_counter() - start)
    log.info("%d runs rescored with %s", len(done), SCORER)
    return done


if __name__ == "__main__":
    main()
