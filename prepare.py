"""Prepare a real video data set: `python prepare.py dataset=tgif` (download the GIFs, preprocess) or
`python prepare.py dataset=msrvtt` (extract the zip, preprocess). Preprocessed clips are cached under
data/cache/videos/<dataset>-<key>/; damaged files are skipped and listed in report.json there. See README.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.group_options import refuse_unknown_options
from t2vlab.tasks.prepare import prepare
from t2vlab.tasks.run import run_task

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare")
def main(cfg: DictConfig) -> None:
    run_task(prepare, cfg)


if __name__ == "__main__":
    refuse_unknown_options(Path(__file__).resolve().parent / "conf")
    main()
