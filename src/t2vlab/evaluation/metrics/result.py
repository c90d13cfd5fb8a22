"""What every metric returns: a value with its sample size, or the reason it could not be computed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from t2vlab.pretrained.unavailable import MetricUnavailable

__all__ = ["MetricResult", "MetricUnavailable"]


@dataclass
class MetricResult:
    value: float
    n: int  # how many videos (or pairs, or frames; `unit` says which) the value is computed from
    std: float | None = None  # spread over the n items where the metric is a mean of per-item values
    unit: str = "videos"
    settings: dict = field(default_factory=dict)  # what changes the number: weights, resolution, frames

    def as_dict(self) -> dict:
        return {"available": True, **{k: v for k, v in asdict(self).items() if v is not None}}
