"""Training throughput of the GAN family, in frames per second, through the real training loop.

    .venv/bin/python bench/gan_throughput.py [--model gan] [--iterations 60] [--precisions 32-true bf16-mixed]

The loop of bench/train_throughput.py (the real `trainer.fit`, timed after warm-up iterations, with the FLOP/s
achieved against the matmul peaks of the same process) on experiment=video_gan_circles with the chosen generator,
for two setups: the write-up's (batches of 16 single frames) and the recipe's batch of whole clips. Results are
printed and written to bench/results/<model>_throughput.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train_throughput import machine, measure, report_line

from t2vlab.runtime.flops import measure_peaks
from t2vlab.runtime.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]


def measure_setup(model: str, setup: str, precision: str, iterations: int, warmup: int,
                  peaks: tuple[float, float]) -> dict:
    overrides = ["experiment=video_gan_circles", f"model={model}", "loss=gan_bce", "dataset.settings.num_videos=2000"]
    if setup == "blog":
        overrides += ["dataset.batch_size=16", "dataset.as_frames=true"]
    return {"model": model, "setup": setup, **measure(overrides, precision, iterations, warmup, peaks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gan")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    args = parser.parse_args()
    register_resolvers()
    peaks = measure_peaks()
    results = [measure_setup(args.model, setup, precision, args.iterations, args.warmup, peaks)
               for setup in ("blog", "default") for precision in args.precisions]
    report = {"machine": machine(), "results": results}
    for r in results:
        print(f"{r['model']:>10} {r['setup']:>8} {report_line(r)}")
    out = ROOT / "bench" / "results" / f"{args.model}_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
