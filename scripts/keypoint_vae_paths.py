"""Where a keypoint VAE run loses a motion: the same prompts rendered four ways and scored by the circles scorer.

    .venv/bin/python scripts/keypoint_vae_paths.py <run folder> [--clips 16] [--data-seed 7] [--noise-seed 0]

For fresh real clips of each phase motion (data seed `--data-seed`, `--clips` per prompt):
  real                       the clips themselves (the scorer's ceiling);
  encoder path               the generator's sprite on the path the keypoint encoder reads off each clip;
  posterior mean, own path   the generator's own path from the posterior's mean z;
  prior                      z from the run's prior (N(0, I) or its learned one; seed `--noise-seed`): what
                             generation does.
A motion that passes on the posterior's path and fails from the prior is lost between the two: the VAE's prior.
"""

from __future__ import annotations

import argparse

import torch

from t2vlab.data.circles import CirclesSettings, generate
from t2vlab.evaluation.metrics.motion_accuracy import score_clips
from t2vlab.tasks.evaluate import load_run

PROMPTS = ["circle bouncing vertically", "circle bouncing horizontally", "circle zigzagging vertically",
           "circle zigzagging horizontally", "circle rotating clockwise", "circle rotating counter-clockwise",
           "circle shrinking", "circle expanding"]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--clips", type=int, default=16, help="real clips per prompt")
    ap.add_argument("--data-seed", type=int, default=7, help="seed of the real clips (not the training set's 0)")
    ap.add_argument("--noise-seed", type=int, default=0, help="seed of the prior's z")
    args = ap.parse_args(argv)
    _, _, cfg, _, model = load_run(args.run, None)
    if model.family != "keypoint_vae":
        raise SystemExit(f"error: {args.run} is a {model.family!r} run; allowed: a keypoint_vae run")
    frames, size = cfg.dataset.settings.num_frames, cfg.dataset.settings.image_size
    settings = CirclesSettings(seed=args.data_seed, prompts=PROMPTS, num_videos=args.clips * len(PROMPTS),
                               num_frames=frames, image_size=size)
    videos, texts, _ = generate(settings)
    real = torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    g = model.generator
    with torch.no_grad():
        ids, mask = model._text(texts)
        text = g.text(ids, mask)
        path = model.encoder(real)
        h = g.code(model.posterior(*path, text)[0], text)
        noise = model.draw_codes(text, torch.Generator().manual_seed(args.noise_seed))
        ways = {"real": real, "encoder path": g.render(h, *path),
                "posterior mean, own path": g.render(h, *g.trajectory(h, frames)),
                "prior": g(noise, ids, mask, frames)}
    print("| rendering | " + " | ".join(p.removeprefix("circle ") for p in PROMPTS) + " |")
    print("|---" * (len(PROMPTS) + 1) + "|")
    table = {}
    for name, clips in ways.items():
        table[name] = score_clips(((clips + 1) / 2).clamp(0, 1), texts, settings)[0]
        print(f"| {name} | " + " | ".join(f"{table[name][p]:.2f}" for p in PROMPTS) + " |")
    return table


if __name__ == "__main__":
    main()
