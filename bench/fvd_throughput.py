"""FVD feature throughput on this machine: I3D clips per second at 16x64x64 and 16x256x256 input.

    .venv/bin/python bench/fvd_throughput.py [--clips 16] [--batch-size 8] [--threads N]

Times `FVD.features` (resize to 224, centre crop, the I3D forward) on random clips after one warm-up batch,
in float32 as the metric runs, and with bf16 autocast where the CPU supports it, which the metric does not
use; for bf16 it also reports how far the features and an FVD move from float32. Results are printed and
written to bench/results/fvd_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from functools import partial
from pathlib import Path

import torch

from t2vlab.evaluation.metrics.frechet import frechet_distance
from t2vlab.evaluation.metrics.fvd import FVD
from t2vlab.runtime.flops import Utilisation, count_flops, measure_peaks
from t2vlab.runtime.hardware import cpu_supports_bf16

ROOT = Path(__file__).resolve().parents[1]


def timed_features(metric: FVD, videos: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, float]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        metric.features(videos[: metric.batch_size])  # warm-up
        start = time.perf_counter()
        feats = metric.features(videos)
    return feats, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    metric = FVD(cache_dir=str(ROOT / "data" / "cache"), batch_size=args.batch_size, progress=False)
    metric.load()
    peaks = measure_peaks()
    g = torch.Generator().manual_seed(0)
    rows = []
    for size in (64, 256):
        videos = torch.rand(args.clips, 16, 3, size, size, generator=g)
        other = (videos * 0.8).roll(1, dims=-1)
        feats32, secs32 = timed_features(metric, videos, bf16=False)
        row = {"input": f"16x{size}x{size}", "clips": args.clips, "fp32_clips_per_s": args.clips / secs32}
        per_clip = count_flops(partial(metric.features, videos[:1]))  # the I3D forward of one clip
        row["fp32_utilisation"] = Utilisation(per_clip, args.clips / secs32, *peaks, unit="clip").as_dict()
        if cpu_supports_bf16():
            feats16, secs16 = timed_features(metric, videos, bf16=True)
            other32, _ = timed_features(metric, other, bf16=False)
            other16, _ = timed_features(metric, other, bf16=True)
            row |= {"bf16_clips_per_s": args.clips / secs16,
                    "bf16_max_abs_feature_diff": float((feats16 - feats32).abs().max()),
                    "fvd_fp32": frechet_distance(feats32, other32), "fvd_bf16": frechet_distance(feats16, other16),
                    "bf16_utilisation": Utilisation(per_clip, args.clips / secs16, *peaks, unit="clip").as_dict()}
        rows.append(row)
        print(json.dumps(row))
    result = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "batch_size": args.batch_size, "rows": rows}
    out = ROOT / "bench" / "results" / "fvd_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
