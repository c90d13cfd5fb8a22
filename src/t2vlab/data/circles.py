"""Synthetic moving circles: the embedded dataset that lets every family train on a CPU.

The prompts are those of the "text-to-video from scratch" write-up, with its defects fixed: the circle is
drawn, moves stay in frame without wrap-around, rotation is an orbit around the image centre, zigzags
stay in frame, and shrinking/expanding change the radius. Trajectories are vectorised numpy and the
rasteriser is batched torch, so 10,000 clips render in a few seconds; the whole set is a pure function
of its settings (seed included), rendered once up front, so workers and batch order never change it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from annotated_types import Ge
from torch.utils.data import Dataset

from t2vlab.data.circles_cache import load_cache, save_cache
from t2vlab.data.memory import check_fits

# prompt -> motion. "up-left" and "diagonally up-left" are the same motion, as in the write-up.
PROMPT_MOTIONS: dict[str, str] = {
    "circle moving down": "down",
    "circle moving left": "left",
    "circle moving right": "right",
    "circle moving diagonally up-right": "up-right",
    "circle moving diagonally down-left": "down-left",
    "circle moving diagonally up-left": "up-left",
    "circle moving diagonally down-right": "down-right",
    "circle rotating clockwise": "rotate-cw",
    "circle rotating counter-clockwise": "rotate-ccw",
    "circle bouncing vertically": "bounce-vertical",
    "circle bouncing horizontally": "bounce-horizontal",
    "circle zigzagging vertically": "zigzag-vertical",
    "circle zigzagging horizontally": "zigzag-horizontal",
    "circle moving up-left": "up-left",
    "circle moving down-right": "down-right",
    "circle moving down-left": "down-left",
    "circle shrinking": "shrink",
    "circle expanding": "expand",
    # the write-up's unseen test prompt; held out by default
    "circle moving up-right": "up-right",
    "circle moving up": "up",
}
TRAIN_PROMPTS: tuple[str, ...] = tuple(list(PROMPT_MOTIONS)[:18])
DEFAULT_HOLDOUT: tuple[str, ...] = ("circle moving up-right",)

# unit direction in image coordinates (x right, y down)
_S = 2**-0.5
MOVE_DIRECTIONS: dict[str, tuple[float, float]] = {
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up-right": (_S, -_S),
    "up-left": (-_S, -_S),
    "down-right": (_S, _S),
    "down-left": (-_S, _S),
}


def check_prompts(key: str, prompts: list[str]) -> None:
    """Every prompt must be one the data set can render (and the scorer can judge)."""
    unknown = [p for p in prompts if p not in PROMPT_MOTIONS]
    if unknown:
        raise ValueError(f"{key}: {unknown[0]!r} is not a circles prompt; allowed: "
                         f"{', '.join(repr(p) for p in sorted(PROMPT_MOTIONS))}")


def motion_of(prompt: str) -> str:
    if prompt not in PROMPT_MOTIONS:
        raise ValueError(f"unknown circles prompt {prompt!r}; known prompts: {sorted(PROMPT_MOTIONS)}")
    return PROMPT_MOTIONS[prompt]


@dataclass
class CirclesSettings:
    """Everything that changes the pixels; its hash keys the on-disk cache."""

    num_videos: Annotated[int, Ge(1)] = 10_000
    num_frames: Annotated[int, Ge(2)] = 10  # a video has motion
    image_size: Annotated[int, Ge(16)] = 64
    radius: tuple[float, float] = (4.0, 7.0)
    speed: tuple[float, float] = (2.5, 4.5)  # pixels per frame, capped so a move stays in frame
    start_jitter: float = 1.0  # 0: moves start at the centre of their feasible range; 1: anywhere in it
    colors: list[list[int]] = field(default_factory=lambda: [[0, 0, 255]])
    background: list[int] = field(default_factory=lambda: [255, 255, 255])
    prompts: list[str] = field(default_factory=lambda: list(TRAIN_PROMPTS))
    seed: int = 0

    def __post_init__(self) -> None:
        self.radius = tuple(float(r) for r in self.radius)
        self.speed = tuple(float(s) for s in self.speed)
        self.colors = [list(map(int, c)) for c in self.colors]
        self.background = list(map(int, self.background))
        self.prompts = list(self.prompts)
        checks = [
            ("num_videos", self.num_videos >= 1, ">= 1"),
            ("num_frames", self.num_frames >= 2, ">= 2"),
            ("image_size", self.image_size >= 16, ">= 16"),
            ("radius", 1 <= self.radius[0] <= self.radius[1] <= self.image_size / 5,
             f"1 <= min <= max <= image_size/5 = {self.image_size / 5:g}"),
            ("speed", 0 < self.speed[0] <= self.speed[1], "0 < min <= max"),
            ("start_jitter", 0 <= self.start_jitter <= 1, "[0, 1]"),
            ("colors", len(self.colors) >= 1 and all(len(c) == 3 and all(0 <= v <= 255 for v in c)
                                                     for c in self.colors), "a non-empty list of RGB 0..255"),
            ("background", len(self.background) == 3, "an RGB triple 0..255"),
            ("prompts", len(self.prompts) >= 1, "a non-empty list"),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"dataset.settings.{key}={getattr(self, key)!r} is invalid; allowed: {allowed}")
        check_prompts("dataset.settings.prompts", self.prompts)
        check_fits("dataset.settings", self.memory_description(), self.peak_bytes())

    def peak_bytes(self) -> int:
        """The clips as uint8 three times over: rendered, permuted to (N, T, C, H, W), and the cache's copy."""
        return 3 * self.num_videos * self.num_frames * 3 * self.image_size ** 2

    def memory_description(self) -> str:
        return (f"num_videos={self.num_videos} clips x num_frames={self.num_frames} x image_size="
                f"{self.image_size}^2 RGB")

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# the generator's ranges beyond the settings, as fractions of the image size where they scale with it
ORBIT = (0.22, 0.3)  # rotation: orbit radius
MIN_ORBIT_STEP = np.deg2rad(20)  # rotation: at least this angle per frame, so the orbit is visible
BOUNCE_MIN_SPEED = 3.0  # pixels per frame
ZIGZAG_AMPLITUDE = (0.1, 0.14)
SCALE_SMALL, SCALE_BIG = (0.05, 0.07), (0.2, 0.25)  # shrink/expand: the radius at the small and the big end
SCALE_OFFSET = 0.08  # shrink/expand: the centre's offset from the image centre, at most


def motion_limits(motion: str, s: CirclesSettings, num_frames: int | None = None) -> dict:
    """What clips of `motion` drawn with settings `s` and `num_frames` frames can show: the disc's radius range
    {"radius": (lo, hi)} in pixels, and the largest step of its centre ("step") and radius ("radius_step") between
    two frames, in pixels. From the same constants `trajectories` draws with."""
    T, size = num_frames or s.num_frames, float(s.image_size)
    if motion in ("shrink", "expand"):
        lo, hi = SCALE_SMALL[0] * size, SCALE_BIG[1] * size
        return {"radius": (lo, hi), "step": 0.0, "radius_step": (SCALE_BIG[1] - SCALE_SMALL[0]) * size / (T - 1)}
    fast = s.speed[1]
    if motion in ("rotate-cw", "rotate-ccw"):  # a chord of the orbit at the largest angular step
        orbit = ORBIT[1] * size
        angle = max(fast / (ORBIT[0] * size), MIN_ORBIT_STEP)
        step = 2 * orbit * np.sin(min(angle, np.pi) / 2)
    elif motion in ("bounce-vertical", "bounce-horizontal"):
        step = max(fast, BOUNCE_MIN_SPEED)
    elif motion in ("zigzag-vertical", "zigzag-horizontal"):  # along, and a full swing across
        step = float(np.hypot(fast, ZIGZAG_AMPLITUDE[1] * size))
    else:
        step = fast
    return {"radius": tuple(s.radius), "step": float(step), "radius_step": 0.0}


def _triangle(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect positions into [lo, hi]: a ball bouncing off two walls."""
    span = hi - lo
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def trajectories(motions: list[str], s: CirclesSettings, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Centre x, y and radius per clip and frame, each (N, T) float, for the given motions."""
    n, T, size = len(motions), s.num_frames, float(s.image_size)
    t = np.arange(T, dtype=np.float64)[None, :]
    m = np.array(motions)
    r0 = rng.uniform(*s.radius, size=(n, 1))
    speed = rng.uniform(*s.speed, size=(n, 1))
    jitter = rng.uniform(-0.5, 0.5, size=(n, 2)) * s.start_jitter
    cx = np.full((n, T), size / 2)
    cy = np.full((n, T), size / 2)
    rad = np.repeat(r0, T, axis=1)
    margin = r0 + 1.0  # keep the whole disc inside the frame
    lo, hi = margin, size - margin

    for name, (dx, dy) in MOVE_DIRECTIONS.items():
        sel = m == name
        if not sel.any():
            continue
        # cap speed so the full path fits; start anywhere in the feasible interval
        span = (hi[sel] - lo[sel])[:, 0]
        v = np.minimum(speed[sel, 0], span / (T - 1))
        for coord, d, j in ((cx, dx, 0), (cy, dy, 1)):
            travel = d * v * (T - 1)
            start_lo = lo[sel, 0] + np.maximum(0, -travel)
            start_hi = hi[sel, 0] - np.maximum(0, travel)
            mid, half = (start_lo + start_hi) / 2, (start_hi - start_lo) / 2
            start = mid + 2 * jitter[sel, j] * half if d != 0 else size / 2 + jitter[sel, j] * (span / 2)
            coord[sel] = start[:, None] + d * v[:, None] * t

    for name, sign in (("rotate-cw", 1.0), ("rotate-ccw", -1.0)):
        sel = m == name
        if sel.any():
            k = int(sel.sum())
            orbit = rng.uniform(*ORBIT, size=(k, 1)) * size
            phase = rng.uniform(0, 2 * np.pi, size=(k, 1))
            # angular speed from the linear speed; at least MIN_ORBIT_STEP per frame so the orbit is visible
            omega = np.maximum(speed[sel] / orbit, MIN_ORBIT_STEP)
            ang = phase + sign * omega * t  # y points down, so increasing angle is clockwise on screen
            cx[sel] = size / 2 + orbit * np.cos(ang)
            cy[sel] = size / 2 + orbit * np.sin(ang)

    for name, axis in (("bounce-vertical", 1), ("bounce-horizontal", 0)):
        sel = m == name
        if sel.any():
            k = int(sel.sum())
            v = np.maximum(speed[sel], BOUNCE_MIN_SPEED)
            # hit a wall at frame `hit` (not the first or last two), so every clip shows the reversal
            hit = rng.integers(2, T - 2, size=(k, 1)) if T >= 5 else np.ones((k, 1))
            top = rng.random((k, 1)) < 0.5
            wall = np.where(top, lo[sel], hi[sel])
            inward = np.where(top, 1.0, -1.0)
            pos = _triangle(wall + inward * v * np.abs(t - hit), lo[sel], hi[sel])
            (cy if axis == 1 else cx)[sel] = pos

    for name, axis in (("zigzag-vertical", 1), ("zigzag-horizontal", 0)):
        sel = m == name
        if sel.any():
            k = int(sel.sum())
            amp = rng.uniform(*ZIGZAG_AMPLITUDE, size=(k, 1)) * size
            span = (hi[sel] - lo[sel])
            v = np.minimum(speed[sel], span / (T - 1))
            direction = np.where(rng.random((k, 1)) < 0.5, -1.0, 1.0)
            travel = direction * v * (T - 1)
            start = (lo[sel] + hi[sel]) / 2 - travel / 2
            along = start + direction * v * t
            swing = size / 2 + amp * _zig(T)[None, :]  # side to side, turning every other frame
            (cy if axis == 1 else cx)[sel] = along
            (cx if axis == 1 else cy)[sel] = swing

    for name, grow in (("shrink", False), ("expand", True)):
        sel = m == name
        if sel.any():
            k = int(sel.sum())
            small = rng.uniform(*SCALE_SMALL, size=(k, 1)) * size
            big = rng.uniform(*SCALE_BIG, size=(k, 1)) * size
            frac = t / (T - 1)
            rad[sel] = small + (big - small) * frac if grow else big + (small - big) * frac
            off = rng.uniform(-SCALE_OFFSET, SCALE_OFFSET, size=(k, 2)) * size * s.start_jitter
            cx[sel] = size / 2 + off[:, :1]
            cy[sel] = size / 2 + off[:, 1:]

    return cx, cy, rad


def _zig(T: int) -> np.ndarray:
    """-1, 0, 1, 0, -1, ... style swing: a triangle wave of period 4 frames."""
    phase = np.arange(T) % 4
    return np.select([phase == 0, phase == 1, phase == 2], [-1.0, 0.0, 1.0], 0.0)


def render(cx: np.ndarray, cy: np.ndarray, rad: np.ndarray, color_index: np.ndarray, s: CirclesSettings,
           chunk: int = 256) -> np.ndarray:
    """Anti-aliased discs of palette colour `color_index` on the background: uint8 (N, T, H, W, 3)."""
    n, T = cx.shape
    size = s.image_size
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    # blending through a lookup table (palette colour x 256 coverage levels) keeps the hot loop on one channel
    bg = torch.tensor(s.background, dtype=torch.float32)
    level = torch.linspace(0, 1, 256).view(1, 256, 1)
    palette = torch.tensor(s.colors, dtype=torch.float32).view(-1, 1, 3)
    lut = (bg + level * (palette - bg)).round().to(torch.uint8).view(-1, 3)  # (P*256, 3)
    cx, cy, rad = (torch.from_numpy(a).float() for a in (cx, cy, rad))
    base = torch.from_numpy(color_index).long().view(-1, 1, 1, 1) * 256
    out = torch.empty((n, T, size, size, 3), dtype=torch.uint8)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        dx2 = (grid.view(1, 1, 1, size) - cx[a:b, :, None, None]).square()
        dy2 = (grid.view(1, 1, size, 1) - cy[a:b, :, None, None]).square()
        cover = (rad[a:b, :, None, None] + 0.5 - (dx2 + dy2).sqrt()).clamp_(0.0, 1.0)
        idx = cover.mul_(255).round_().long().add_(base[a:b])
        out[a:b] = lut[idx]
    return out.numpy()


def generate(s: CirclesSettings, prompts: list[str] | None = None,
             wobble: float = 0.0) -> tuple[np.ndarray, list[str], dict]:
    """Render s.num_videos clips cycling through the prompts in a seeded shuffled order.

    `wobble` > 0 shakes each frame's centre by about `wobble` pixels and its radius by about `wobble` x 6%
    (the motion classifier trains on such clips; the dataset itself never wobbles).
    Returns (videos uint8 (N,T,H,W,3), prompt per clip, ground truth {"cx","cy","radius"} (N,T)).
    """
    prompts = list(prompts or s.prompts)
    rng = np.random.default_rng(s.seed)
    order = rng.permutation(np.arange(s.num_videos) % len(prompts))
    texts = [prompts[i] for i in order]
    cx, cy, rad = trajectories([motion_of(p) for p in texts], s, rng)
    if wobble > 0:
        cx = cx + rng.normal(0, wobble, cx.shape)
        cy = cy + rng.normal(0, wobble, cy.shape)
        rad = np.maximum(1.0, rad * (1 + rng.normal(0, 0.06 * wobble, rad.shape)))
    videos = render(cx, cy, rad, rng.integers(0, len(s.colors), size=s.num_videos), s)
    return videos, texts, {"cx": cx, "cy": cy, "radius": rad}


class CirclesDataset(Dataset):
    """Items are {"video": float (T,C,H,W) in [0,1], "text": str, "id": str}."""

    def __init__(self, settings: CirclesSettings, cache_dir: str | None = None) -> None:
        self.settings = settings
        cache = Path(cache_dir) / f"circles-{settings.key()}.npz" if cache_dir else None
        loaded = load_cache(cache) if cache is not None else None
        if loaded is not None:
            videos, texts = loaded
        else:
            videos, texts, _ = generate(settings)
            if cache is not None:
                save_cache(cache, videos, texts, asdict(settings))
        # (N,T,H,W,3) -> (N,T,3,H,W), kept uint8: 10k clips of 10 64x64 frames take ~1.2 GB
        self.videos = torch.from_numpy(videos).permute(0, 1, 4, 2, 3).contiguous()
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.videos[i].float().div_(255), "text": self.texts[i],
                "id": f"circles-{self.settings.seed}-{i}"}
