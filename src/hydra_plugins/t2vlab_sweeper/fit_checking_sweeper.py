"""Hydra's basic grid sweeper, minus the combinations that cannot run.

`python train.py -m model=gan,video_gan loss=gan_bce,gan_r3 seed=0,1,2` composes every job's config first;
a job whose loss does not fit its model is listed at launch (and in <sweep dir>/skipped.txt) and not run,
and the rest of the grid runs. Hydra only finds sweepers inside the `hydra_plugins` package, hence this home.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

log = logging.getLogger(__name__)


class FitCheckingSweeper(BasicSweeper):
    def split_arguments(self, overrides, max_batch_size):  # an instance method here: it needs the config loader
        from t2vlab.tasks.preflight import check_model_and_loss

        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        runnable, skipped = [], []
        for job in jobs:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
            try:
                check_model_and_loss(cfg)
                runnable.append(job)
            except ValueError as e:
                skipped.append(f"{' '.join(job)}: {e}")
        if skipped:
            log.warning("skipping %d of %d jobs that cannot run:\n  %s", len(skipped), len(jobs), "\n  ".join(skipped))
            sweep_dir = Path(self.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            (sweep_dir / "skipped.txt").write_text("\n".join(skipped) + "\n")
        size = max_batch_size or len(runnable) or 1
        return [runnable[i:i + size] for i in range(0, len(runnable), size)]
