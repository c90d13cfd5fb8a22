"""The Splitter tables of docs/splitter.md from trained runs: one row per folder of seeds, mean ± std over them.

    .venv/bin/python scripts/splitter_table.py outputs/splitter_table outputs/splitter_best

Each argument holds one folder per configuration (a sweep over seeds: <config>/<seed>/metrics.json). Columns:
step-mode motion accuracy (seen moves, all seen prompts, held out), regression mode (the same weights), step mode
with the prior itself as frame 0, and training seconds; the scorer that wrote the values is named per row, and
the seen-moves value of the earlier scorer (circles-v1) is shown where a rescoring kept it.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

COLUMNS = [
    ("motion_acc/seen_moves", "step: seen moves"), ("motion_acc/seen_all", "step: all seen"),
    ("motion_acc/heldout", "step: held-out"), ("regression/motion_acc/seen_moves", "regression: seen moves"),
    ("regression/motion_acc/seen_all", "regression: all seen"),
    ("regression/motion_acc/heldout", "regression: held-out"),
    ("prior_first/motion_acc/seen_moves", "prior as frame 0: seen moves"), ("train/seconds", "train s"),
]


def cell(key: str, values: list[float]) -> str:
    if not values:
        return "-"
    if key == "train/seconds":
        return f"{statistics.mean(values):.0f}"
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{spread}"


def rows(root: Path) -> list[str]:
    out = []
    for config in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = [json.loads(f.read_text()) for f in sorted(config.glob("*/metrics.json"))]
        if not runs:
            continue
        scorers = ", ".join(sorted({r.get("motion_acc/scorer", "circles-v1") for r in runs}))
        cells = [cell(key, [r[key] for r in runs if key in r]) for key, _ in COLUMNS]
        earlier = [r["superseded"]["circles-v1"]["motion_acc/seen_moves"] for r in runs
                   if "motion_acc/seen_moves" in r.get("superseded", {}).get("circles-v1", {})]
        cells.append(cell("motion_acc/seen_moves", earlier))
        out.append(f"| `{config.name}` | {len(runs)} | {scorers} | " + " | ".join(cells) + " |")
    return out


def main(folders: list[str]) -> None:
    names = [name for _, name in COLUMNS] + ["step: seen moves, circles-v1"]
    print("| configuration | N | scorer | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * (len(COLUMNS) + 1))
    for folder in folders:
        print("\n".join(rows(Path(folder))))


if __name__ == "__main__":
    main(sys.argv[1:])
