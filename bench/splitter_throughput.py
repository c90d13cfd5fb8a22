"""Splitter training throughput at the thesis shapes: our batched step against the reference trainer's per-clip
loop, in clips and predictions per second, at max_batch 4 and 15, fp32 and bf16 autocast.

    .venv/bin/python bench/splitter_throughput.py [--model splitter_dual] [--clips 32] [--batch 8] [--rounds 2]

Random embeddings with the thesis shapes: D=1280, 77 text tokens, clips of 16-40 frames. Both loops run the same
network, loss and rules (the model's defaults: the reference's frame sampling, all pairs both ways, rotation and
regression steps, the raw text turned); the tests check that they compute the same loss.
- per-clip loop (`models/splitter/reference_step.py`), what the reference trainer does per clip: frames sampled
  in Python (up to max_batch), its pair lists, one network call per step type with the text hidden states copied
  and rotated per prediction, dense D x D rotation matrices built and applied (R x), one optimizer step per clip;
- ours (`SplitterModule.training_step`): --batch clips per optimizer step, the text's maps computed once per
  clip and reached by low-rank updates, rotations in O(D).
The two loops alternate in rounds over the same clips, so that a shared machine's changing speed affects both
alike; the per-round ratios are printed beside the totals. Results go to bench/results/splitter_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from functools import partial
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from t2vlab.backbones.embedding_data import collate_embeddings
from t2vlab.models.splitter.reference_step import clip_step, sample_labels, way_pairs
from t2vlab.runtime.flops import Utilisation, count_flops, measure_peaks
from t2vlab.runtime.hardware import cpu_supports_bf16
from t2vlab.runtime.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
D, L = 1280, 77


def build(model: str, max_batch: int, D: int = D, L: int = L):
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", "loss=splitter_base", f"model.max_batch={max_batch}"])
    torch.manual_seed(0)
    module = instantiate(cfg.model, loss=instantiate(cfg.loss), net={"dim": D, "text_len": L}, _convert_="all")
    module.log = lambda *args, **kwargs: None  # no trainer in these loops
    module.train()
    module.bench_optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    return module


def fake_clips(n: int, seed: int = 0, D: int = D, L: int = L) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"frames": torch.randn(int(torch.randint(16, 41, (1,), generator=g)), D, generator=g),
             "hidden": torch.randn(L, D, generator=g), "pooled": torch.randn(D, generator=g),
             "prior": torch.randn(D, generator=g), "text": "x", "id": str(i)} for i in range(n)]


def predictions(module, frames: int) -> int:
    """Network predictions one training step makes from a clip of K sampled frames, under the module's rules."""
    h = module.hparams
    K = min(frames, h.max_batch)
    ways = 2 if h.reverse else 1
    total = ways * (K - 1) if h.base_step else 0
    pairs = way_pairs(list(range(1, K)), K - 1, h.pairs)
    if h.rotation_step:
        total += ways * (min(len(pairs), K - 1) if h.pairs == "all" and len(pairs) > h.max_batch - 1 else len(pairs))
    if h.regression_step:
        total += ways * len(pairs)
    return total


def step(module, loss: torch.Tensor) -> None:
    opt = module.bench_optimizer
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def run_ours(module, clips: list[dict], batch: int, bf16: bool) -> float:
    start = time.perf_counter()
    for i in range(0, len(clips), batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = module.training_step(collate_embeddings(clips[i : i + batch]), 0)
        step(module, loss)
    return time.perf_counter() - start


def run_per_clip(module, clips: list[dict], bf16: bool, rng: random.Random) -> float:
    start = time.perf_counter()
    for clip in clips:
        labels = sample_labels(len(clip["frames"]), module.hparams.max_batch, rng)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = clip_step(module, clip, labels)["loss"]
        step(module, loss)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="splitter_dual")
    parser.add_argument("--clips", type=int, default=32, help="clips timed per setting, split into --rounds rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="clips per optimizer step in our loop")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[4, 15], help="frames sampled per clip")
    parser.add_argument("--dim", type=int, default=D, help="embedding width (1280: Kandinsky 2.2)")
    parser.add_argument("--text-len", type=int, default=L, help="text tokens (77: Kandinsky 2.2)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "splitter_throughput.json"))
    args = parser.parse_args(argv)
    dims = {"D": args.dim, "L": args.text_len}
    random.seed(0)
    peaks = measure_peaks()

    counts = {}
    for name in ("splitter", "splitter_next", "splitter_dual", "splitter_dual_csa"):
        counts[name] = sum(p.numel() for p in build(name, 15, **dims).net.parameters())
        print(f"{name:>18}: {counts[name] / 1e6:6.2f} M parameters at D={args.dim}, L={args.text_len}")
    clips = fake_clips(args.clips + args.batch, **dims)
    warm, timed = clips[: args.batch], clips[args.batch :]
    per_round = max(1, len(timed) // args.rounds)
    results = {"model": args.model, "D": args.dim, "L": args.text_len, "clips": len(timed), "batch": args.batch,
               "params": counts,
               "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "settings": []}
    for max_batch in args.max_batch:
        for bf16 in [False, True] if cpu_supports_bf16() else [False]:
            label = f"max_batch {max_batch}, {'bf16' if bf16 else 'fp32'}"
            ours, reference = build(args.model, max_batch, **dims), build(args.model, max_batch, **dims)
            preds = sum(predictions(ours, len(c["frames"])) for c in timed)
            rng = random.Random(0)
            run_ours(ours, warm, args.batch, bf16)  # warm-up: allocator, kernels
            run_per_clip(reference, warm[:2], bf16, rng)
            warm_preds = sum(predictions(ours, len(c["frames"])) for c in warm)  # FLOPs per prediction, counted once
            flops_ours = count_flops(partial(run_ours, ours, warm, args.batch, bf16)) / warm_preds
            flops_ref = count_flops(partial(run_per_clip, reference, warm, bf16, random.Random(1))) / warm_preds
            ours_s, ref_s, ratios = 0.0, 0.0, []
            for i in range(0, len(timed), per_round):
                chunk = timed[i : i + per_round]
                o = run_ours(ours, chunk, args.batch, bf16)
                r = run_per_clip(reference, chunk, bf16, rng)
                ours_s, ref_s = ours_s + o, ref_s + r
                ratios.append(r / o)
            row = {"max_batch": max_batch, "precision": "bf16" if bf16 else "fp32",
                   "predictions_per_clip": preds / len(timed),
                   "ours_clips_per_s": len(timed) / ours_s, "per_clip_loop_clips_per_s": len(timed) / ref_s,
                   "ours_predictions_per_s": preds / ours_s, "per_clip_loop_predictions_per_s": preds / ref_s,
                   "speedup": ref_s / ours_s, "speedup_per_round": ratios}
            use_ours = Utilisation(round(flops_ours), preds / ours_s, *peaks, unit="prediction")
            use_ref = Utilisation(round(flops_ref), preds / ref_s, *peaks, unit="prediction")
            row |= {"ours_utilisation": use_ours.as_dict(), "per_clip_loop_utilisation": use_ref.as_dict()}
            results["settings"].append(row)
            print(f"{label}: {row['predictions_per_clip']:.0f} predictions per clip | ours "
                  f"{row['ours_clips_per_s']:6.2f} clips/s ({row['ours_predictions_per_s']:7.0f} predictions/s, "
                  f"{args.batch} clips per step) | per-clip loop {row['per_clip_loop_clips_per_s']:6.2f} clips/s "
                  f"({row['per_clip_loop_predictions_per_s']:6.0f} predictions/s) | {row['speedup']:5.1f}x "
                  f"(per round: {', '.join(f'{r:.1f}x' for r in ratios)})", flush=True)
            print(f"    ours: {use_ours.line()}\n    per-clip loop: {use_ref.line()}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
    return results


if __name__ == "__main__":
    main()
