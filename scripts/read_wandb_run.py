"""What an offline W&B run holds, read from its transaction log without uploading it: the step axis of each
kind of value, the run's option names and tags, and the tables it logged.

    .venv/bin/python scripts/read_wandb_run.py outputs/video_gan_circles/<time>
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from t2vlab.loggers.wandb_offline import read_offline_run

STEP = "trainer/global_step"  # the x-axis Lightning's WandbLogger logs every row against


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a training run folder (its newest wandb/offline-run-*) or an offline-run-* folder")
    args = parser.parse_args()
    run_dir = Path(args.run)
    folders = sorted(run_dir.glob("wandb/offline-run-*")) if not run_dir.name.startswith("offline-run-") else [run_dir]
    if not folders:
        raise SystemExit(f"error: {run_dir} holds no wandb/offline-run-* folder; allowed: a run with logger=wandb")
    run = read_offline_run(folders[-1])
    steps: dict[str, list[int]] = defaultdict(list)
    tables: dict[str, int] = {}
    for row in run.history:
        for key, value in row.items():
            if key in (STEP, "_step", "_runtime", "_timestamp"):
                continue
            group = key.split("/")[0]
            steps[group].append(row.get(STEP, -1))
            if isinstance(value, dict) and value.get("_type") == "table-file":
                tables[key] = value.get("nrows", 0)
    print(f"{folders[-1]}: {len(run.history)} history rows")
    print(f"step axis ({STEP}), per first part of the key: first .. last (rows)")
    for group, values in sorted(steps.items()):
        print(f"  {group:<22} {min(values):>7} .. {max(values):<7} ({len(values)})")
    choices = {k.removeprefix("choices/"): v for k, v in run.config.items() if k.startswith("choices/")}
    print("options:", ", ".join(f"{k}={v}" for k, v in sorted(choices.items())))
    print("overrides:", run.config.get("overrides"))
    print("tags:", run.tags)
    print("tables:", ", ".join(f"{k} ({n} rows)" for k, n in tables.items()) or "none")


if __name__ == "__main__":
    main()
