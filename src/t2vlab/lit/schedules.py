"""Learning-rate multipliers the families share."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(warmup: int, total: int, floor: float) -> Callable[[int], float]:
    """step -> multiplier: linear warm-up over `warmup` steps, then a cosine from 1 down to `floor` at `total`
    (for torch.optim.lr_scheduler.LambdaLR)."""

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))

    return rate
