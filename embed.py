"""Embed a dataset with a backbone into the embedding cache: `python embed.py backbone=circles_unclip`.

Computes what the Splitter trains on (every frame's image embedding, the prompt's text hidden states and
pooled embedding, the prior's embedding) once, as checksummed shards under data/cache/embeddings/<key>/.
A second run with the same settings is a cache hit; an interrupted run resumes; see README.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.embed import embed
from t2vlab.tasks.group_options import refuse_unknown_options
from t2vlab.tasks.run import run_task

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="embed")
def main(cfg: DictConfig) -> None:
    run_task(embed, cfg)


if __name__ == "__main__":
    refuse_unknown_options(Path(__file__).resolve().parent / "conf")
    main()
