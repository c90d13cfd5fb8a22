"""The MAGVIT task-ablation table of docs/magvit.md from a finished sweep and its per-job evaluations.

    .venv/bin/python scripts/magvit_ablation_table.py outputs/magvit_task_ablation/multirun_<time>

Each job folder <sweep>/<n>/ holds the job's overrides (.hydra/overrides.yaml) and, for every scored task, an
evaluation written by `evaluate.py run_dir=<sweep>/<n> seeds=[...] hydra.run.dir=<sweep>/<n>/eval_<task>`
(docs/magvit.md shows the loop). One row per job: the weights of the tasks it trained on, then motion accuracy
(mean ± std over the generation seeds) on the seen move prompts, all seen prompts and the held-out prompt, for
text-to-video, frame prediction and frame interpolation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

WEIGHTS = [("model.task_weights.frame_prediction", "frame prediction"),
           ("model.task_weights.frame_interpolation", "frame interpolation"), ("spatial_tasks", "spatial tasks")]
TASKS = [("generation", "text-to-video"), ("frame_prediction", "frame prediction"),
         ("frame_interpolation", "frame interpolation")]
SCORES = [("motion_acc/seen_moves", "seen moves"), ("motion_acc/seen_all", "all seen"),
          ("motion_acc/heldout", "held out")]


def cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    spread = entry.get("std_over_seeds")
    return f"{entry['value']:.2f}" + (f" ± {spread:.2f}" if spread is not None else "")


def job_row(job: Path) -> str | None:
    overrides_file = job / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        return None
    overrides = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()) if "=" in o)
    cells = [overrides.get(key, "?") for key, _ in WEIGHTS]
    seeds = set()
    for task, _ in TASKS:
        report_file = job / f"eval_{task}" / "metrics.json"
        report = json.loads(report_file.read_text()) if report_file.is_file() else {"metrics": {}}
        seeds.add(tuple(report.get("seeds", ())))
        cells += [cell(report["metrics"].get(key)) for key, _ in SCORES]
    seed_list = ", ".join(str(list(s)) for s in sorted(seeds) if s) or "-"
    return f"| {job.name} | " + " | ".join(cells) + f" | {seed_list} |"


def main(sweep: str) -> None:
    jobs = sorted((p for p in Path(sweep).iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    names = [name for _, name in WEIGHTS] + [f"{t}: {s}" for _, t in TASKS for _, s in SCORES] + ["seeds"]
    print("| job | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for job in jobs:
        row = job_row(job)
        if row is not None:
            print(row)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: magvit_ablation_table.py <sweep folder of experiment=magvit_task_ablation>")
    main(sys.argv[1])
