"""Score a trained module on the circles prompts: sample K clips per prompt and run the motion scorer.

A module whose clips start with frames it was given (`given_frames`, e.g. MAGVIT's frame prediction from a real
first frame) is also scored on the frames it generated alone (`motion_acc_predicted/...`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from rich.console import Console
from rich.table import Table

from t2vlab.data.circles import CirclesSettings
from t2vlab.evaluation.metrics.motion_accuracy import (
    SCORER,
    clip_verdicts,
    describe_failures,
    motion_accuracy,
    summarize,
    tally,
)
from t2vlab.evaluation.sampling import sample


@dataclass
class CirclesReport:
    summary: dict[str, float]  # motion_acc/seen_moves, motion_acc/seen_all, motion_acc/heldout
    per_prompt: dict[str, float]
    videos: torch.Tensor  # (N, T, C, H, W) in [0, 1]
    prompts: list[str]
    predicted: dict[str, float] = field(default_factory=dict)  # motion_acc_predicted/...: generated frames only
    failures: dict[str, dict[str, int]] = field(default_factory=dict)  # prompt -> {reason: clips}
    verdicts: list[str] = field(default_factory=list)  # per clip: "" (passes) or why it fails
    predicted_verdicts: list[str] = field(default_factory=list)  # the same on the generated frames alone

    def metrics(self) -> dict:
        return {**self.summary, **self.predicted, **{f"motion_acc/prompt/{p}": v for p, v in self.per_prompt.items()},
                **{f"motion_acc/failures/{p}": describe_failures(r) for p, r in self.failures.items()},
                "motion_acc/scorer": SCORER}


def circles_settings(datamodule) -> CirclesSettings | None:
    """The circles data set a datamodule serves (directly or under the Splitter's embedding cache), else None."""
    settings = getattr(datamodule, "settings", None)
    return settings if isinstance(settings, CirclesSettings) else None


def given_frames(module) -> int:
    """How many leading frames of the module's generated clips are copied from a real clip (0: none)."""
    return int(getattr(module, "given_frames", 0) or 0)


def predicted_summary(videos: torch.Tensor, prompts: list[str], train_prompts: list[str], given: int,
                      settings: CirclesSettings | None = None) -> dict[str, float]:
    """The motion summary of the frames after the `given` ones, keyed motion_acc_predicted/... ({} if none)."""
    if given <= 0:
        return {}
    return _as_predicted(summarize(motion_accuracy(videos[:, given:], prompts, settings), train_prompts))


def _as_predicted(summary: dict[str, float]) -> dict[str, float]:
    return {k.replace("motion_acc/", "motion_acc_predicted/"): v for k, v in summary.items()}


def evaluate_circles(module, train_prompts: list[str], heldout_prompts: list[str], clips_per_prompt: int,
                     num_frames: int, seed: int, settings: CirclesSettings | None = None) -> CirclesReport:
    """Sample K clips per prompt and score them against the data set `settings` (its sizes, colours, speeds)."""
    prompts = list(dict.fromkeys([*train_prompts, *heldout_prompts]))
    videos, texts = sample(module, prompts, clips_per_prompt, num_frames, seed)
    verdicts = clip_verdicts(videos, texts, settings)
    per_prompt, failures = tally(verdicts, texts)
    given = given_frames(module)
    predicted_verdicts = clip_verdicts(videos[:, given:], texts, settings) if given > 0 else []
    predicted = _as_predicted(summarize(tally(predicted_verdicts, texts)[0], train_prompts)) if given > 0 else {}
    return CirclesReport(summarize(per_prompt, train_prompts), per_prompt, videos, texts, predicted, failures,
                         verdicts, predicted_verdicts)


def print_report(report: CirclesReport, heldout_prompts: list[str], title: str = "circle motion accuracy",
                 console: Console | None = None) -> None:
    table = Table(title=title)
    table.add_column("prompt")
    table.add_column("split")
    table.add_column("accuracy", justify="right")
    table.add_column("why clips fail")
    for prompt, acc in report.per_prompt.items():
        table.add_row(prompt, "held-out" if prompt in heldout_prompts else "seen", f"{acc:.2f}",
                      describe_failures(report.failures.get(prompt, {})))
    for key, value in {**report.summary, **report.predicted}.items():
        table.add_row(f"[bold]{key}", "", f"[bold]{value:.3f}", "")
    (console or Console()).print(table)
