"""Score a trained module on the circles prompts: sample K clips per prompt and run the motion scorer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table

from t2vlab.metrics.circles import motion_accuracy, summarize
from t2vlab.sampling import sample


@dataclass
class CirclesReport:
    summary: dict[str, float]  # motion_acc/seen_moves, motion_acc/seen_all, motion_acc/heldout
    per_prompt: dict[str, float]
    videos: torch.Tensor  # (N, T, C, H, W) in [0, 1]
    prompts: list[str]

    def metrics(self) -> dict:
        return {**self.summary, **{f"motion_acc/prompt/{p}": v for p, v in self.per_prompt.items()}}


def evaluate_circles(module, train_prompts: list[str], heldout_prompts: list[str], clips_per_prompt: int,
                     num_frames: int, seed: int, background=(1.0, 1.0, 1.0)) -> CirclesReport:
    prompts = list(dict.fromkeys([*train_prompts, *heldout_prompts]))
    videos, texts = sample(module, prompts, clips_per_prompt, num_frames, seed)
    per_prompt = motion_accuracy(videos, texts, background)
    return CirclesReport(summarize(per_prompt, train_prompts), per_prompt, videos, texts)


def print_report(report: CirclesReport, heldout_prompts: list[str], title: str = "circle motion accuracy",
                 console: Console | None = None) -> None:
    table = Table(title=title)
    table.add_column("prompt")
    table.add_column("split")
    table.add_column("accuracy", justify="right")
    for prompt, acc in report.per_prompt.items():
        table.add_row(prompt, "held-out" if prompt in heldout_prompts else "seen", f"{acc:.2f}")
    for key, value in report.summary.items():
        table.add_row(f"[bold]{key}", "", f"[bold]{value:.3f}")
    (console or Console()).print(table)
