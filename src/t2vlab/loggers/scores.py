"""A run's end scores, sent to its loggers."""

from __future__ import annotations

import numbers

from pytorch_lightning.loggers import Logger, WandbLogger


def log_scores(loggers: list[Logger], scores: dict, step: int) -> None:
    """W&B takes text values too (the scorer's name, why clips fail); the other loggers take numbers only
    (TensorBoard refuses text, MLflow warns once per key). The text stays in metrics.json either way."""
    for logger in loggers:
        keep = (lambda v: v is not None) if isinstance(logger, WandbLogger) else _is_number
        logger.log_metrics({k: v for k, v in scores.items() if keep(v)}, step=step)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number)
