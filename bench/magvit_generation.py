"""Time to generate one clip with a trained MAGVIT transformer: `steps` parallel decoding steps plus the
tokenizer's decoder, batch 1, as `generate` runs it.

    .venv/bin/python bench/magvit_generation.py RUN_DIR [--repeats 10] [--frames 16]

RUN_DIR is a run of experiment=magvit_circles (or any model=magvit run). Reports the median and best wall time
per clip, and the split between decoding and the tokenizer's decoder, for fp32 and (where the CPU has it)
bf16 autocast. Results go to bench/results/magvit_generation.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from t2vlab.runtime.flops import Utilisation, count_flops, measure_peaks
from t2vlab.runtime.hardware import cpu_supports_bf16
from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.evaluate import load_run

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the run's)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "magvit_generation.json"))
    args = parser.parse_args(argv)
    register_resolvers()
    _, _, cfg, _, model = load_run(args.run_dir, None)
    frames = args.frames or model.hparams.num_frames
    prompt = ["circle moving left"]
    results = {"run": args.run_dir, "frames": frames, "steps": model.hparams.steps, "tokens": model.net.num_tokens,
               "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads()}
    peaks = measure_peaks()
    with torch.no_grad():
        flops = count_flops(partial(model.generate, prompt, frames, seed=0))  # one clip: every decoding step
    for bf16 in [False, True] if cpu_supports_bf16() else [False]:
        label = "bf16" if bf16 else "fp32"
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.no_grad():
            whole = timed(lambda: model.generate(prompt, frames, seed=0), args.repeats)
            tokens = model._decode("generation", prompt, len(prompt), 0)
            decoder = timed(lambda t=tokens: model.tokenizer.detokenize(t, frames), args.repeats)
        use = Utilisation(flops, 1 / statistics.median(whole), *peaks, unit="clip")
        results[label] = {"median_s": statistics.median(whole), "best_s": min(whole),
                          "tokenizer_decoder_median_s": statistics.median(decoder), "utilisation": use.as_dict()}
        print(f"{label}: one {frames}-frame clip in {statistics.median(whole):.3f} s (median of {args.repeats}; best "
              f"{min(whole):.3f} s), of which the tokenizer's decoder {statistics.median(decoder):.3f} s")
        print(f"    {use.line()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
    return results


if __name__ == "__main__":
    main()
