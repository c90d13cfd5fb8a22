"""What every metric returns: a value with its sample size, or the reason it could not be computed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class MetricResult:
    value: float
    n: int  # how many videos (or pairs, or frames; `unit` says which) the value is computed from
    std: float | None = None  # spread over the n items where the metric is a mean of per-item values
    unit: str = "videos"
    settings: dict = field(default_factory=dict)  # what changes the number: weights, resolution, frames

    def as_dict(self) -> dict:
        return {"available": True, **{k: v for k, v in asdict(self).items() if v is not None}}


class MetricUnavailable(RuntimeError):
    """A metric whose weights or inputs cannot be had here. Reported as unavailable, never as a number."""

    def __init__(self, metric: str, reason: str, how_to_enable: str) -> None:
        super().__init__(f"{metric} unavailable: {reason}. To enable: {how_to_enable}")
        self.metric, self.reason, self.how_to_enable = metric, reason, how_to_enable

    def as_dict(self) -> dict:
        return {"available": False, "reason": self.reason, "enable": self.how_to_enable}
