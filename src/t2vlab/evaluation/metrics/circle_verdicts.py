"""What a viewer checks in a circles clip before the motion: one clean disc per frame, of the data set's size
and colour, that moves no faster than the data set lets it. `verdict` returns why a clip fails ("" when it
passes these checks and its motion test).

Per frame, foreground is every pixel whose largest channel differs from the background by more than 0.5 (half
way to any palette colour), split into 8-connected blobs with scipy.ndimage.label (specks under MIN_BLOB pixels are
not counted). A frame fails with the first reason that applies: no blob ("no circle"), more than one ("several
blobs"), an equivalent radius sqrt(area / pi) outside the motion's radius range widened by RADIUS_TOLERANCE
("wrong size"), a blob that is not a disc ("not round": elongation, the ratio of its principal standard deviations,
above MAX_ELONGATION, or fill, area / (4 pi sqrt(det cov)), 1 for a disc, below MIN_FILL), a mean colour further
than COLOUR_TOLERANCE (largest channel) from every palette colour ("wrong colour").
Per clip, every frame must hold a blob, at least MIN_PASSING of the frames must pass, the largest blob's centre
may move at most STEP_TOLERANCE x the motion's largest step + STEP_SLACK pixels between frames (its radius
likewise), and the centres must pass the motion's test (evaluation/metrics/circle_motion.py).

Real clips set the tolerances (`CircleLimits` holds what the data set draws; measured on 1,900 clips of seed 7,
10 and 16 frames): exactly one blob in every frame, equivalent radius 0.93-1.03 of the drawn one, elongation up
to 1.15, fill 0.967-0.999, colour error up to 0.10. The tolerances leave room for a blurred edge (about one pixel
on the smallest discs) and for generated motion a little faster than the data's, not for a second blob, a trail
or a teleport.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from t2vlab.data.circles import CirclesSettings, motion_limits, motion_of
from t2vlab.evaluation.metrics.circle_motion import Track, check_motion

REASONS = ("no circle", "several blobs", "wrong size", "not round", "wrong colour", "jumps", "wrong motion")
FOREGROUND = 0.5
MIN_BLOB = 3  # pixels
MAX_ELONGATION = 1.25  # real discs: up to 1.15; the mildest 3-frame trail (2.5 px a frame, r 6.2): 1.32
MIN_FILL = 0.85
RADIUS_TOLERANCE = 0.2  # the radius range widened by 20% each way
COLOUR_TOLERANCE = 0.3
MIN_PASSING = 0.9  # of a clip's frames
STEP_TOLERANCE, STEP_SLACK = 1.25, 2.0  # a step may be 25% over the data set's largest, plus 2 pixels


@dataclass(frozen=True)
class CircleLimits:
    """What the data set draws: background and palette in [0, 1], and per motion the radius range (px), the largest
    step of the centre and of the radius between frames (px)."""

    background: tuple[float, float, float]
    colours: tuple[tuple[float, float, float], ...]
    image_size: int
    num_frames: int
    settings: CirclesSettings

    @classmethod
    def from_settings(cls, settings: CirclesSettings) -> CircleLimits:
        colours = tuple(tuple(v / 255 for v in c) for c in settings.colors)
        return cls(tuple(c / 255 for c in settings.background), colours, settings.image_size, settings.num_frames,
                   settings)

    def of(self, motion: str, num_frames: int) -> dict[str, float]:
        """radius (lo, hi), step and radius_step for `motion` in clips of `num_frames` frames."""
        return motion_limits(motion, self.settings, num_frames)


@dataclass
class FrameBlobs:
    """Per frame of a clip (T,): blob count, and the largest blob's centre, equivalent radius, shape and colour."""

    count: np.ndarray
    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    elongation: np.ndarray
    fill: np.ndarray
    colour: np.ndarray  # (T, 3)


def find_blobs(video: torch.Tensor | np.ndarray, background: tuple[float, float, float]) -> FrameBlobs:
    """video (T, C, H, W) in [0, 1] -> the blobs of each frame."""
    v = torch.as_tensor(video, dtype=torch.float32).numpy()
    bg = np.asarray(background, dtype=np.float32).reshape(1, 3, 1, 1)
    foreground = np.abs(v - bg).max(axis=1) > FOREGROUND  # (T, H, W)
    T = len(v)
    out = {k: np.zeros(T) for k in ("count", "x", "y", "radius", "elongation", "fill")}
    out["colour"] = np.zeros((T, 3))
    eight = np.ones((3, 3), dtype=bool)
    for t in range(T):
        labels, n = ndimage.label(foreground[t], structure=eight)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        out["count"][t] = int((sizes >= MIN_BLOB).sum())
        ys, xs = np.nonzero(labels == int(np.argmax(sizes)) + 1)
        pts = np.stack([xs + 0.5, ys + 0.5], axis=1)
        cov = np.cov(pts.T, bias=True) + np.eye(2) / 12 if len(xs) > 1 else np.eye(2) / 12  # a pixel's own extent
        low, high = np.linalg.eigvalsh(cov)
        out["x"][t], out["y"][t] = pts.mean(axis=0)
        out["radius"][t] = np.sqrt(len(xs) / np.pi)
        out["elongation"][t] = np.sqrt(high / max(low, 1e-9))
        out["fill"][t] = len(xs) / (4 * np.pi * np.sqrt(max(low * high, 1e-12)))
        out["colour"][t] = v[t][:, ys, xs].mean(axis=1)
    return FrameBlobs(**out)


def frame_failures(blobs: FrameBlobs, limits: CircleLimits, motion: str) -> list[str]:
    """Per frame: "" when it shows one disc of the data set's size and colour, else the first reason it fails."""
    lo, hi = limits.of(motion, len(blobs.count))["radius"]
    palette = np.asarray(limits.colours)
    reasons = []
    for t in range(len(blobs.count)):
        if blobs.count[t] == 0:
            reasons.append("no circle")
        elif blobs.count[t] > 1:
            reasons.append("several blobs")
        elif not (1 - RADIUS_TOLERANCE) * lo <= blobs.radius[t] <= (1 + RADIUS_TOLERANCE) * hi:
            reasons.append("wrong size")
        elif blobs.elongation[t] > MAX_ELONGATION or blobs.fill[t] < MIN_FILL:
            reasons.append("not round")
        elif np.abs(palette - blobs.colour[t]).max(axis=1).min() > COLOUR_TOLERANCE:
            reasons.append("wrong colour")
        else:
            reasons.append("")
    return reasons


def verdict(prompt: str, video: torch.Tensor | np.ndarray, limits: CircleLimits,
            blobs: FrameBlobs | None = None) -> str:
    """"" when the clip shows the prompt's motion as a viewer would accept it, else the first reason it fails, in the
    order of REASONS. `blobs`: the clip's find_blobs, to judge one clip against several prompts without finding
    them again."""
    motion = motion_of(prompt)
    if blobs is None:
        blobs = find_blobs(video, limits.background)
    failures = frame_failures(blobs, limits, motion)
    if "no circle" in failures:
        return "no circle"
    failing = [f for f in failures if f]
    if len(failing) > (1 - MIN_PASSING) * len(failures):
        return max(REASONS[1:5], key=failing.count)  # the most common frame failure
    allowed = limits.of(motion, len(failures))
    steps = np.hypot(np.diff(blobs.x), np.diff(blobs.y))
    radius_steps = np.abs(np.diff(blobs.radius))
    if (steps > STEP_TOLERANCE * allowed["step"] + STEP_SLACK).any() or \
            (radius_steps > STEP_TOLERANCE * allowed["radius_step"] + STEP_SLACK).any():
        return "jumps"
    track = Track(x=blobs.x, y=blobs.y, radius=blobs.radius, present=np.ones(len(failures), dtype=bool),
                  size=limits.image_size)
    return "" if check_motion(motion, track) else "wrong motion"
