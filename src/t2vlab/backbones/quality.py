"""How good a circles backbone is, measured on clips it never saw, with the circles tracker.

- reconstruction: encode every frame, decode it, track the circle in both; centre and radius errors (px);
- ordering: cosine similarity of each frame's embedding to the first frame's should fall as the circle
  moves away from where it started (Spearman correlation against the true displacement, per clip);
- prior: the prior's embedding for each prompt decodes to a frame with one circle in it.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from t2vlab.data.circles import CirclesSettings, generate
from t2vlab.evaluation.metrics.circle_motion import track


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = (np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float) for x in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def circles_quality(backbone, settings: CirclesSettings, num_clips: int = 200, seed: int = 1000003,
                    prompts: list[str] | None = None, prior_samples: int = 4) -> dict:
    prompts = list(prompts or settings.prompts)
    s = CirclesSettings(**{**asdict(settings), "num_videos": num_clips, "seed": seed, "prompts": prompts})
    videos, texts, truth = generate(s)
    clips = torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float().div_(255)  # (N,T,3,H,W)
    N, T = clips.shape[:2]
    background = tuple(c / 255 for c in s.background)

    embeds = backbone.encode_frames(clips.flatten(0, 1)).cpu()  # (N*T, D)
    decoded = backbone.decode(embeds.to(backbone.device)).cpu().view(N, T, 3, *clips.shape[-2:])
    centre, radius, missing = [], [], 0
    for real, fake in zip(clips, decoded, strict=True):
        a, b = track(real, background), track(fake, background)
        ok = a.present & b.present
        missing += int((a.present & ~b.present).sum())
        centre.append(np.hypot(a.x - b.x, a.y - b.y)[ok])
        radius.append(np.abs(a.radius - b.radius)[ok])
    centre, radius = np.concatenate(centre), np.concatenate(radius)

    E = embeds.view(N, T, -1)
    cos = F.cosine_similarity(E[:, :1], E, dim=-1).numpy()  # (N, T)
    moved = np.hypot(truth["cx"] - truth["cx"][:, :1], truth["cy"] - truth["cy"][:, :1]) + np.abs(
        truth["radius"] - truth["radius"][:, :1])
    rho = np.array([spearman(cos[i, 1:], moved[i, 1:]) for i in range(N)])

    unique = sorted(set(prompts))
    with torch.inference_mode():
        prior = backbone.prior([p for p in unique for _ in range(prior_samples)],
                               [k for _ in unique for k in range(prior_samples)])
        prior_frames = backbone.decode(prior).cpu()
    found = [bool(track(f[None], background).present[0]) for f in prior_frames]

    def mean_p95(errors: np.ndarray) -> tuple[float, float]:
        # no decoded frame with a circle: infinitely bad, not NaN (a NaN ends an Optuna sweep)
        return (float(errors.mean()), float(np.percentile(errors, 95))) if errors.size else (np.inf, np.inf)

    (c_mean, c_p95), (r_mean, r_p95) = mean_p95(centre), mean_p95(radius)
    return {
        "unclip/center_err_px": c_mean, "unclip/center_err_px_p95": c_p95,
        "unclip/radius_err_px": r_mean, "unclip/radius_err_px_p95": r_p95,
        "unclip/frames_without_circle": missing, "unclip/frames": N * T,
        # a clip is ordered when similarity falls as displacement grows (negative rank correlation)
        "unclip/order_frac": float((rho < 0).mean()), "unclip/order_rho_mean": float(rho.mean()),
        "unclip/prior_circle_frac": float(np.mean(found)), "unclip/quality_clips": N,
    }
