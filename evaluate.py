"""Score a trained run: `python evaluate.py run_dir=outputs/<experiment>/<time>` (or ckpt_path=...).

Generates K clips per prompt (training prompts and held-out ones), scores circle motion accuracy per
prompt, prints a table and writes metrics.json + the clips under outputs/evaluate/<time>/.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.group_options import refuse_unknown_options
from t2vlab.tasks.run import run_task

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from t2vlab.tasks.evaluate import evaluate  # seconds of imports: after the option check

    run_task(evaluate, cfg)


if __name__ == "__main__":
    refuse_unknown_options(Path(__file__).resolve().parent / "conf")
    main()
