"""Train a text-to-video model: `python train.py [group=option ...] [key=value ...]`.

Compose the config (conf/train.yaml), then compose -> instantiate -> fit -> sample -> score; returns the
configured `optimized_metric` for multirun and Optuna sweeps. See README for the groups.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.group_options import refuse_unknown_options
from t2vlab.tasks.run import run_task

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from t2vlab.tasks.train import optimized_value, train  # seconds of imports: after the option check

    metrics = run_task(train, cfg)
    if not metrics:
        return None
    return optimized_value(metrics, cfg.get("optimized_metric"), cfg.get("optimized_direction", "maximize"))


if __name__ == "__main__":
    refuse_unknown_options(Path(__file__).resolve().parent / "conf")
    main()
