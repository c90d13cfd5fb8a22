"""What the circles scorer says of real clips after a round trip through the circles_unclip backbone (each frame
encoded to its image embedding and decoded again): the most any Splitter walking that space can score.

    .venv/bin/python scripts/circles_unclip_ceiling.py [--clips-per-prompt 16] [--seed 2000005]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from t2vlab.backbones.circles_unclip import CirclesUnclipBackbone
from t2vlab.data.circles import TRAIN_PROMPTS, CirclesSettings
from t2vlab.evaluation.metrics.circle_verdicts import CircleLimits, find_blobs
from t2vlab.evaluation.metrics.motion_accuracy import SCORER, describe_failures, score_clips
from t2vlab.evaluation.reconstruction import heldout_clips

HELDOUT = "circle moving up-right"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="data/backbones/circles_unclip")
    parser.add_argument("--clips-per-prompt", type=int, default=16)
    parser.add_argument("--seed", type=int, default=2_000_005, help="data seed (the training set is seed 0)")
    parser.add_argument("--decode-seed", type=int, default=0)
    args = parser.parse_args()
    backbone = CirclesUnclipBackbone(path=args.backbone)
    settings = CirclesSettings()
    prompts = [*TRAIN_PROMPTS, HELDOUT]
    videos, clip_prompts = heldout_clips(settings, args.clips_per_prompt * len(prompts), args.seed, prompts)
    with torch.no_grad():
        embeds = backbone.encode_frames(videos.flatten(0, 1)).view(*videos.shape[:2], -1)
        decoded = backbone.decode_video(embeds, seed=args.decode_seed)
    moves = [p for p in TRAIN_PROMPTS if "moving" in p]
    for name, clips in (("real clips", videos), ("encoded and decoded", decoded)):
        accuracy, reasons = score_clips(clips, clip_prompts, settings)
        failures = Counter()
        for per_prompt in reasons.values():
            failures.update(per_prompt)
        seen_moves = sum(accuracy[p] for p in moves) / len(moves)
        print(f"{name} ({SCORER}, N={len(clip_prompts)}): seen moves {seen_moves:.2f}, "
              f"all seen {sum(accuracy[p] for p in TRAIN_PROMPTS) / len(TRAIN_PROMPTS):.2f}, "
              f"held out {accuracy[HELDOUT]:.2f}; failures: {describe_failures(failures) or 'none'}")
        print(f"  {elongation_summary(clips, settings)}")


def elongation_summary(clips: torch.Tensor, settings: CirclesSettings) -> str:
    """How far from round the discs are: percentiles of the elongation over frames that hold one blob."""
    background = CircleLimits.from_settings(settings).background
    values = []
    for video in clips:
        blobs = find_blobs(video, background)
        values += list(blobs.elongation[blobs.count == 1])
    p = np.percentile(values, [50, 95, 99])
    return f"elongation over {len(values)} one-blob frames: median {p[0]:.2f}, p95 {p[1]:.2f}, p99 {p[2]:.2f}"


if __name__ == "__main__":
    main()
