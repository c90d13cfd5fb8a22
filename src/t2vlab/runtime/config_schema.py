"""Markers that code puts in its signatures for the config check (`t2vlab.tasks.config_types`).

Ranges use `annotated_types` directly: `batch_size: Annotated[int, Ge(1)]`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KwargsOf:
    """`settings: Annotated[dict | None, KwargsOf(CirclesSettings)]`: the mapping holds keywords of `cls`, checked
    key by key against its signature as a `_target_` node is."""

    cls: type
