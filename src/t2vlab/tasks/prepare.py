"""The prepare task: a real data set's downloads (TGIF) or extraction (MSR-VTT), then its preprocessing cache,
with the skip report printed and saved beside the run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table

from t2vlab.runtime.atomic import atomic_path
from t2vlab.tasks.common import instantiate
from t2vlab.tasks.preflight import BadInput

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> dict:
    if "download" in cfg.dataset:
        with open_dict(cfg):
            cfg.dataset.download.enabled = True  # this command is the one that fetches
    try:  # a missing file or bad setting is reported in one line (exit code 2)
        datamodule = instantiate(cfg.dataset, _convert_="all")
        if not hasattr(datamodule, "report"):
            log.info("dataset %s needs no preparation (it is generated in memory)", cfg.dataset._target_)
            return {}
        datamodule.check()
        datamodule.prepare_data()
        datamodule.setup("fit")
    except ValueError as e:
        raise BadInput(str(e)) from None
    report = datamodule.report
    table = Table(title=f"{datamodule.name}: {report['kept']} clips kept, {report['skipped']} files skipped")
    table.add_column("reason")
    table.add_column("files", justify="right")
    for reason, n in report["by_reason"].items():
        table.add_row(reason, str(n))
    Console().print(table)
    summary = {"dataset": datamodule.name, "clips": len(datamodule.train_set), **report}
    with atomic_path(Path(cfg.paths.output_dir) / "metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
