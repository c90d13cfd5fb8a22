"""The types of the config keys an entry point reads itself (those no `_target_` class takes), one dataclass
per entry point (`task_name`), checked by `t2vlab.tasks.config_types` beside the `_target_` nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge

from t2vlab.runtime.config_schema import KwargsOf


@dataclass
class EmbeddingCacheKeys:
    prior_seed: int = 0
    shard_size: Annotated[int, Ge(1)] = 256


@dataclass
class EvaluationKeys:
    """train.py's scoring after training."""

    clips_per_prompt: Annotated[int, Ge(1)] = 16
    num_frames: Annotated[int, Ge(2)] | None = None  # null: the data set's clip length
    seed: int = 1234
    variants: dict = field(default_factory=dict)


@dataclass
class TrainKeys:
    seed: int = 0
    ckpt_path: str | None = None
    print_config: bool = True
    experiment_name: str | None = None
    tags: list[str] = field(default_factory=list)
    optimized_metric: str | None = "motion_acc/seen_all"
    optimized_direction: Literal["maximize", "minimize"] = "maximize"
    embedding_cache: Annotated[dict, KwargsOf(EmbeddingCacheKeys)] = field(default_factory=dict)
    evaluation: Annotated[dict, KwargsOf(EvaluationKeys)] = field(default_factory=dict)


@dataclass
class EvaluateKeys:
    run_dir: str | None = None
    ckpt_path: str | None = None
    videos: str | None = None
    compare: str | list[str] | None = None
    benchmark: str | list[str] | None = None
    clips_per_prompt: Annotated[int, Ge(1)] | None = None
    num_frames: Annotated[int, Ge(2)] | None = None
    generation: dict = field(default_factory=dict)
    seed: int = 1234
    seeds: list[int] | None = None
    prompts: list[str] | None = None
    write_videos: bool = True
    wandb_summary: bool = True
    fps: Annotated[int, Ge(1)] = 5
    print_config: bool = False


@dataclass
class PrepareKeys:
    print_config: bool = False


@dataclass
class EmbedKeys:
    embedding_cache: Annotated[dict, KwargsOf(EmbeddingCacheKeys)] = field(default_factory=dict)
    progress: bool = True
    print_config: bool = False


TASK_KEYS = {"train": TrainKeys, "evaluate": EvaluateKeys, "prepare": PrepareKeys, "embed": EmbedKeys}
