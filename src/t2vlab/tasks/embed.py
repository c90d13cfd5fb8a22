"""The embed task: fill the embedding cache for (backbone, dataset) and write what it measured."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from t2vlab.backbones.embedding_cache import EmbeddingCache
from t2vlab.runtime.atomic import atomic_path
from t2vlab.tasks.common import build_backbone, dataset_name
from t2vlab.tasks.preflight import BadInput

log = logging.getLogger(__name__)


def embed(cfg: DictConfig) -> dict:
    datamodule = instantiate(cfg.dataset, _convert_="all")
    if getattr(datamodule, "as_frames", False):
        raise BadInput("dataset.as_frames=true: the embedding cache needs whole clips; allowed: false")
    backbone = build_backbone(cfg.backbone)
    try:
        if callable(getattr(datamodule, "check", None)):
            datamodule.check()
        datamodule.prepare_data()
        datamodule.setup("fit")
    except ValueError as e:
        raise BadInput(str(e)) from None
    name = dataset_name(cfg)
    cache = EmbeddingCache(Path(cfg.paths.cache_dir) / "embeddings", backbone, datamodule.train_set, name,
                           prior_seed=cfg.embedding_cache.prior_seed, shard_size=cfg.embedding_cache.shard_size)
    summary = cache.build(progress=cfg.progress)
    rate = f", {summary['clips_per_s']:.1f} clips/s" if summary["clips_per_s"] else ""
    log.info("embedding cache %s: %d shards computed, %d reused (%d repaired) in %.1f s%s", summary["folder"],
             summary["computed_shards"], summary["reused_shards"], summary["repaired_shards"], summary["seconds"], rate)
    with atomic_path(Path(cfg.paths.output_dir) / "metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
