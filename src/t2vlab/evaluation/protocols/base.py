"""What an evaluation protocol is: which clips to generate, which real clips they are compared with, which
metrics score them. Protocols are configs (conf/protocol/); the evaluate task runs any of them."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch

from t2vlab.evaluation.metrics.result import MetricResult, MetricUnavailable


@dataclass
class EvalSet:
    """Generated clips and the real clips they are scored against, paired by position (same prompt)."""

    generated: torch.Tensor  # (N, T, C, H, W) in [0, 1]
    prompts: list[str]
    reference: torch.Tensor  # (N, T, C, H, W) in [0, 1]
    heldout: set[str] = field(default_factory=set)
    given_frames: int = 0  # leading frames of each generated clip copied from a real clip, not generated


class Protocol:
    """Subclasses set `name`, fill `metrics` and say what to generate and what it is compared with."""

    name = "protocol"
    num_frames: int | None = None  # frames per generated clip, unless the user sets num_frames=
    heldout_prompts: list[str] = []

    def __init__(self, metrics: dict | None = None) -> None:
        self.metrics = dict(metrics or {})
        self.unavailable: dict[str, MetricUnavailable] = {}

    def setup_from_run(self, run_cfg, datamodule, prompts: list[str] | None) -> None:
        """Take what the protocol needs from a training run (its dataset settings, its prompts)."""

    def setup_from_videos(self, rows: list[dict], videos: list[torch.Tensor]) -> None:
        """Take what the protocol needs from a folder of videos and its manifest rows."""

    def requests(self) -> tuple[list[str], int]:
        """(prompts, clips per prompt) to generate."""
        raise NotImplementedError

    def reference(self, prompts: list[str], num_frames: int) -> torch.Tensor:
        """Real clips paired one to one with `prompts`."""
        raise NotImplementedError

    def prepare_generated(self, videos: torch.Tensor) -> torch.Tensor:
        return videos

    def match(self, rows: list[dict]) -> list[int]:
        """The order in which a video folder's rows are scored."""
        return list(range(len(rows)))

    def load_context(self) -> dict:
        """What a metric's load() may ask for by parameter name (e.g. the dataset settings)."""
        return {}

    def load_metrics(self) -> None:
        """Load every metric's weights before any long work; a metric that cannot load is set aside."""
        context = self.load_context()
        for name, metric in list(self.metrics.items()):
            wanted = inspect.signature(metric.load).parameters
            try:
                metric.load(**{k: v for k, v in context.items() if k in wanted})
            except MetricUnavailable as e:
                self.unavailable[name] = e
                del self.metrics[name]

    def score(self, ev: EvalSet) -> tuple[dict[str, MetricResult], dict]:
        """(metric name -> result, details such as per-prompt accuracies)."""
        results: dict[str, MetricResult] = {}
        details: dict = {}
        for name, metric in self.metrics.items():
            out = metric.score(ev) if hasattr(metric, "score") else {name: self.call(metric, ev)}
            for key, value in out.items():
                if isinstance(value, MetricResult):
                    results[key] = value
                else:
                    details[key] = value
        return results, details

    @staticmethod
    def call(metric, ev: EvalSet) -> MetricResult:
        """Text metrics take the prompts, the others take the real clips."""
        if getattr(metric, "needs_prompts", False):
            return metric(ev.generated, ev.prompts)
        return metric(ev.generated, ev.reference)

    def settings(self) -> dict:
        return {}
