"""The motion tests of circles clips: given a circle's centre and radius per frame, does the clip show a motion?

Each motion has a geometric test with tolerances loose enough for generated samples and tight enough that the
other motions fail it (tested on real clips). `track` is a soft tracker (centroid and radius of all foreground
mass) for measurements that need no verdict, such as a backbone's reconstruction error; the scorer
(`circle_verdicts`) tracks the one disc it has checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from t2vlab.data.circles import MOVE_DIRECTIONS

MAX_ANGLE_DEG = 30.0  # a move passes when its fitted direction is within this of the prompt's


@dataclass
class Track:
    x: np.ndarray  # (T,) centroid, pixels, x to the right
    y: np.ndarray  # (T,) centroid, pixels, y down
    radius: np.ndarray  # (T,) sqrt(area / pi)
    present: np.ndarray  # (T,) bool: enough foreground to call it a circle
    size: int


def track(video: torch.Tensor | np.ndarray,
          background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Track:
    """video: float (T, C, H, W) in [0, 1]."""
    v = torch.as_tensor(video, dtype=torch.float32)
    bg = torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1)
    diff = (v - bg).abs().amax(dim=1)  # (T, H, W)
    w = ((diff - 0.2) / 0.3).clamp(0, 1)
    T, H, W = w.shape
    mass = w.sum(dim=(1, 2))
    ys = torch.arange(H, dtype=torch.float32).view(1, H, 1) + 0.5
    xs = torch.arange(W, dtype=torch.float32).view(1, 1, W) + 0.5
    safe = mass.clamp(min=1e-6)
    x = (w * xs).sum(dim=(1, 2)) / safe
    y = (w * ys).sum(dim=(1, 2)) / safe
    return Track(x=x.numpy(), y=y.numpy(), radius=torch.sqrt(mass / torch.pi).numpy(),
                 present=(mass >= 8.0).numpy(), size=W)


def _frac_positive(steps: np.ndarray) -> float:
    return float((steps > 0).mean()) if len(steps) else 0.0


def _slope(v: np.ndarray) -> float:
    t = np.arange(len(v), dtype=np.float64)
    return float(np.polyfit(t, v, 1)[0])


def _check_move(tr: Track, direction: tuple[float, float]) -> bool:
    vx, vy = _slope(tr.x), _slope(tr.y)
    speed = np.hypot(vx, vy)
    if speed < 0.75:  # pixels per frame: a circle that stays put does not move in any direction
        return False
    cos = (vx * direction[0] + vy * direction[1]) / speed
    if cos < np.cos(np.deg2rad(MAX_ANGLE_DEG)):
        return False
    along = tr.x * direction[0] + tr.y * direction[1]
    across = -tr.x * direction[1] + tr.y * direction[0]
    t = np.arange(len(across))
    wobble = np.sqrt(np.mean((across - np.polyval(np.polyfit(t, across, 1), t)) ** 2))
    # a move is straight (no zigzag) and never turns back (no bounce)
    return (_frac_positive(np.diff(along)) >= 0.75 and wobble <= 0.05 * tr.size
            and not _turns_back(along, tr.size))


def _turns_back(a: np.ndarray, size: int) -> bool:
    """True when the coordinate reaches an interior extreme and travels back a visible distance."""
    min_excursion = max(3.0, 0.05 * size)
    for i in (int(np.argmax(a)), int(np.argmin(a))):
        if 0 < i < len(a) - 1 and min(abs(a[i] - a[0]), abs(a[i] - a[-1])) >= min_excursion:
            return True
    return False


def _check_rotation(tr: Track, clockwise: bool) -> bool:
    c = tr.size / 2
    dx, dy = tr.x - c, tr.y - c
    rho = np.hypot(dx, dy)
    if rho.mean() < 0.1 * tr.size or rho.std() > 0.3 * rho.mean():
        return False
    dtheta = _wrapped_diff(np.arctan2(dy, dx))
    sign = 1.0 if clockwise else -1.0  # y points down: increasing angle is clockwise on screen
    # the heading must turn too, or a straight pass near the centre would count as an orbit
    heading_turn = sign * _wrapped_diff(np.arctan2(np.diff(tr.y), np.diff(tr.x))).sum()
    return (sign * dtheta.sum() >= np.deg2rad(90) and _frac_positive(sign * dtheta) >= 0.75
            and heading_turn >= np.deg2rad(60))


def _wrapped_diff(angles: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * np.diff(angles)))  # each step in (-pi, pi]


def _check_scale(tr: Track, grow: bool) -> bool:
    r = tr.radius if grow else -tr.radius
    k = max(1, len(r) // 4)
    first, last = np.abs(r[:k].mean()), np.abs(r[-k:].mean())
    ratio = last / max(first, 1e-6) if grow else first / max(last, 1e-6)
    drift = np.hypot(tr.x - tr.x.mean(), tr.y - tr.y.mean()).max()
    return ratio >= 1.3 and _frac_positive(np.diff(r)) >= 0.7 and drift <= 0.15 * tr.size


def _check_bounce(tr: Track, vertical: bool) -> bool:
    a, b = (tr.y, tr.x) if vertical else (tr.x, tr.y)
    if np.ptp(a) < 0.2 * tr.size or np.ptp(b) > 0.5 * np.ptp(a):
        return False
    return _turns_back(a, tr.size)


def _check_zigzag(tr: Track, vertical: bool) -> bool:
    along, across = (tr.y, tr.x) if vertical else (tr.x, tr.y)
    net = along[-1] - along[0]
    if abs(net) < 0.2 * tr.size or _frac_positive(np.sign(net) * np.diff(along)) < 0.75:
        return False
    steps = np.diff(across)
    steps = steps[np.abs(steps) >= 1.0]  # ignore sub-pixel jitter
    turns = int((np.sign(steps[1:]) != np.sign(steps[:-1])).sum()) if len(steps) > 1 else 0
    return turns >= 2 and np.ptp(across) >= 4.0


def check_motion(motion: str, tr: Track) -> bool:
    """True when the tracked clip shows the motion."""
    if not tr.present.all():
        return False
    if motion in MOVE_DIRECTIONS:
        return _check_move(tr, MOVE_DIRECTIONS[motion])
    if motion in ("rotate-cw", "rotate-ccw"):
        return _check_rotation(tr, motion == "rotate-cw")
    if motion in ("shrink", "expand"):
        return _check_scale(tr, motion == "expand")
    if motion in ("bounce-vertical", "bounce-horizontal"):
        return _check_bounce(tr, motion == "bounce-vertical")
    if motion in ("zigzag-vertical", "zigzag-horizontal"):
        return _check_zigzag(tr, motion == "zigzag-vertical")
    raise ValueError(f"no motion test for {motion!r}")
