"""Where the generated frames of a circles clip go when its first and last frames are given (frame interpolation):
along the path between the two given discs, and into the last one.

For a clip of T frames whose frames 0 and T-1 are given and 1 .. T-2 generated, with c_t the centre of frame t's
largest blob (`find_blobs`) and a = c_0, b = c_{T-1}:
- progress_t = (c_t - a) . (b - a) / |b - a|^2: 0 at the first given disc, 1 at the last;
- off_path_t = the distance from c_t to the segment [a, b] (pixels): past either end it is the distance to that end;
- end_gap = |c_{T-2} - b|: how far the last generated disc is from the given last one.
A straight move's real clip runs along the segment at constant speed. Such a clip "lies between" its given frames
when every generated frame holds a blob, off_path_t <= tol for every t, progress never goes back by more than tol /
|b - a|, and the first and last generated discs are within tol of the given ones (|c_1 - a|, end_gap); tol is the
data set's largest step for the motion (one frame's move: STEP_TOLERANCE x step + STEP_SLACK, the slack the scorer
gives a step). A continuation that overshoots the last disc, stops short, wanders off the line, runs backwards or
jumps into either given frame fails. For other motions the path is not a segment and only end_gap is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from t2vlab.data.circles import MOVE_DIRECTIONS, motion_of
from t2vlab.evaluation.metrics.circle_verdicts import STEP_SLACK, STEP_TOLERANCE, CircleLimits, find_blobs


@dataclass(frozen=True)
class InterpolationPath:
    end_gap: float  # pixels; nan when frame T-2 or T-1 holds no blob
    max_off_path: float  # pixels, over the generated frames; nan for a motion whose path is not a segment
    lies_between: bool | None  # None for a motion whose path is not a segment


def interpolation_path(prompt: str, video: torch.Tensor | np.ndarray, limits: CircleLimits) -> InterpolationPath:
    """video (T, C, H, W) in [0, 1], frames 0 and T-1 given -> how its generated frames 1 .. T-2 move."""
    blobs = find_blobs(video, limits.background)
    T = len(blobs.count)
    if T < 3:
        raise ValueError(f"a clip of {T} frames has no frame between its first and last; allowed: >= 3 frames")
    centres = np.stack([blobs.x, blobs.y], axis=1)
    found = blobs.count > 0
    end_gap = float(np.linalg.norm(centres[T - 2] - centres[T - 1])) if found[T - 2] and found[T - 1] else float("nan")
    motion = motion_of(prompt)
    if motion not in MOVE_DIRECTIONS:
        return InterpolationPath(end_gap, float("nan"), None)
    if not found.all():
        return InterpolationPath(end_gap, float("inf"), False)
    a, b = centres[0], centres[T - 1]
    length2 = float(np.dot(b - a, b - a))
    middle = centres[1 : T - 1]
    progress = (middle - a) @ (b - a) / max(length2, 1e-12)
    nearest = a + np.clip(progress, 0, 1)[:, None] * (b - a)
    off_path = np.linalg.norm(middle - nearest, axis=1)
    tol = STEP_TOLERANCE * limits.of(motion, T)["step"] + STEP_SLACK
    back = np.diff(np.concatenate([[0.0], progress, [1.0]]))
    joins = max(float(np.linalg.norm(centres[1] - a)), end_gap) <= tol
    ok = bool(joins and (off_path <= tol).all() and (back >= -tol / max(np.sqrt(length2), 1e-6)).all())
    return InterpolationPath(end_gap, float(off_path.max()), ok)
