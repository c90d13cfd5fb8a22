"""The error for weights or inputs that cannot be had here."""

from __future__ import annotations


class MetricUnavailable(RuntimeError):
    """A metric whose weights or inputs cannot be had here. Reported as unavailable, never as a number."""

    def __init__(self, metric: str, reason: str, how_to_enable: str) -> None:
        super().__init__(f"{metric} unavailable: {reason}. To enable: {how_to_enable}")
        self.metric, self.reason, self.how_to_enable = metric, reason, how_to_enable

    def as_dict(self) -> dict:
        return {"available": False, "reason": self.reason, "enable": self.how_to_enable}
