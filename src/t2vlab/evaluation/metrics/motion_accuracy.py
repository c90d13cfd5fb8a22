"""Circle motion accuracy: the share of clips a viewer would accept as their prompt's motion.

A clip passes when every frame shows one clean disc of the data set's size and colour, it moves no faster
than the data set lets it, and the disc's centre and radius pass the prompt's motion test
(`circle_verdicts.verdict`, `circle_motion.check_motion`). Each failing clip has a reason (no circle, several
blobs, wrong size, not round, wrong colour, jumps, wrong motion), counted per prompt so a reader sees what a model gets
wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import torch

from t2vlab.data.circles import MOVE_DIRECTIONS, CirclesSettings, motion_of
from t2vlab.evaluation.metrics.circle_motion import Track, check_motion, track  # noqa: F401  (the motion tests' home)
from t2vlab.evaluation.metrics.circle_verdicts import REASONS, CircleLimits, verdict
from t2vlab.evaluation.metrics.result import MetricResult

SCORER = "circles-v2"  # recorded with the values it gives (motion_acc/scorer); v1 tracked all foreground mass


def limits_for(settings: CirclesSettings | None, videos: torch.Tensor) -> CircleLimits:
    """The scorer's limits for clips of a data set (its defaults where the settings are unknown), at the clips'
    frame count and size."""
    base = settings if settings is not None else CirclesSettings()
    fields = {**base.__dict__, "num_frames": int(videos.shape[1]), "image_size": int(videos.shape[-1])}
    return CircleLimits.from_settings(CirclesSettings(**fields))


def clip_verdicts(videos: torch.Tensor, prompts: list[str], settings: CirclesSettings | None = None) -> list[str]:
    """videos (N, T, C, H, W) in [0, 1] with one prompt each -> one verdict per clip: "" when it passes, else the
    reason it fails."""
    limits = limits_for(settings, videos)
    return [verdict(prompt, video, limits) for video, prompt in zip(videos, prompts, strict=True)]


def tally(verdicts: list[str], prompts: list[str]) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Per-clip verdicts -> (accuracy per prompt, failure reasons per prompt as {reason: clips})."""
    outcomes: dict[str, list[str]] = defaultdict(list)
    for reason, prompt in zip(verdicts, prompts, strict=True):
        outcomes[prompt].append(reason)
    accuracy = {p: float(np.mean([r == "" for r in rs])) for p, rs in outcomes.items()}
    reasons = {p: {r: n for r, n in Counter(rs).items() if r} for p, rs in outcomes.items()}
    return accuracy, reasons


def score_clips(videos: torch.Tensor, prompts: list[str], settings: CirclesSettings | None = None
                ) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """videos (N, T, C, H, W) in [0, 1] with one prompt each -> (accuracy per prompt, failure reasons per prompt
    as {reason: clips})."""
    return tally(clip_verdicts(videos, prompts, settings), prompts)


def motion_accuracy(videos: torch.Tensor, prompts: list[str], settings: CirclesSettings | None = None
                    ) -> dict[str, float]:
    """Accuracy per prompt (score_clips without the reasons)."""
    return score_clips(videos, prompts, settings)[0]


def describe_failures(reasons: dict[str, int]) -> str:
    """{reason: clips} -> "several blobs 3, jumps 1", in the order of REASONS."""
    return ", ".join(f"{r} {reasons[r]}" for r in REASONS if reasons.get(r))


def summarize(per_prompt: dict[str, float], train_prompts: list[str]) -> dict[str, float]:
    """Group means: seen moves, all seen prompts, and each held-out prompt."""
    seen = [p for p in per_prompt if p in train_prompts]
    moves = [p for p in seen if motion_of(p) in MOVE_DIRECTIONS]
    out: dict[str, float] = {}
    if moves:
        out["motion_acc/seen_moves"] = float(np.mean([per_prompt[p] for p in moves]))
    if seen:
        out["motion_acc/seen_all"] = float(np.mean([per_prompt[p] for p in seen]))
    held = [p for p in per_prompt if p not in train_prompts]
    if held:
        out["motion_acc/heldout"] = float(np.mean([per_prompt[p] for p in held]))
    return out


class MotionAccuracy:
    """The scorer's verdicts as a protocol metric: per-prompt accuracy, why clips fail, the seen / held-out means."""

    def __init__(self) -> None:
        self.settings: CirclesSettings | None = None

    def load(self, settings: CirclesSettings | None = None) -> None:
        """Nothing to learn; the data set's settings give the radius, colour and speed ranges a clip must keep."""
        self.settings = settings

    def score(self, ev) -> dict:
        """Per-prompt and group accuracies; where the clips start with `ev.given_frames` real frames, the same
        groups again on the generated frames alone (motion_acc_predicted/...)."""
        verdicts = clip_verdicts(ev.generated, ev.prompts, self.settings)
        per_prompt, reasons = tally(verdicts, ev.prompts)
        seen = [p for p in per_prompt if p not in ev.heldout]
        counts = {p: ev.prompts.count(p) for p in per_prompt}
        summaries = {"motion_acc/": (summarize(per_prompt, seen), {})}
        # clips/*: one value per clip, in clip order (the evaluation's clips table)
        out: dict = {"motion_acc/per_prompt": per_prompt, "motion_acc/failures": reasons, "clips/verdict": verdicts}
        given = getattr(ev, "given_frames", 0)
        if given > 0:
            out["clips/verdict_predicted"] = clip_verdicts(ev.generated[:, given:], ev.prompts, self.settings)
            predicted = tally(out["clips/verdict_predicted"], ev.prompts)[0]
            summaries["motion_acc_predicted/"] = (summarize(predicted, seen), {"from_frame": given})
        for prefix, (summary, extra) in summaries.items():
            for key, value in summary.items():
                group = [p for p in per_prompt if (p in ev.heldout) == key.endswith("heldout")]
                if key.endswith("seen_moves"):
                    group = [p for p in group if motion_of(p) in MOVE_DIRECTIONS]
                out[prefix + key.removeprefix("motion_acc/")] = MetricResult(
                    value=value, n=sum(counts[p] for p in group), unit="clips",
                    settings={"prompts": len(group), **extra})
        return out
