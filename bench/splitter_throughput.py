"""Splitter training throughput at the thesis shapes, in clips per second: our batched step against a
loop that, like the reference trainer, samples frames per clip in Python, runs the network once per
prediction (the text encoded, and rotated where a step rotates it, for each prediction) and takes one
optimizer step per clip. Also prints each variant's parameter count at D=1280.

    .venv/bin/python bench/splitter_throughput.py [--model splitter_dual] [--clips 256] [--batch 64]

Random embeddings with the thesis shapes: D=1280, 77 text tokens, clips of 16-40 frames. The same network,
loss and step types (base with reverse, rotation, regression) run in both loops, with the same numbers
(tests check that shared and one-at-a-time predictions agree); what differs is the batching over clips,
the text encoded once per clip instead of once per prediction, the sampling and the optimizer-step count.
The two loops alternate in rounds of --batch clips (the same clips for both), so a shared machine's changing
speed affects both alike; the per-round ratios are printed beside the total.
Results go to bench/results/splitter_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from t2vlab.config import register_resolvers
from t2vlab.data.embeddings import collate_embeddings
from t2vlab.hardware import cpu_supports_bf16
from t2vlab.models.splitter.rotation import soft_rotate
from t2vlab.models.splitter.text_tokens import SharedText

ROOT = Path(__file__).resolve().parents[1]
D, L = 1280, 77


def build(model: str, frames_per_clip: int | None = None):
    register_resolvers()
    GlobalHydra.instance().clear()
    extra = [f"model.frames_per_clip={frames_per_clip}"] if frames_per_clip else []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", "loss=splitter_base", *extra])
    module = instantiate(cfg.model, loss=instantiate(cfg.loss), net={"dim": D, "text_len": L}, _convert_="all")
    module.log = lambda *args, **kwargs: None  # no trainer in these loops
    return module


def fake_clips(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"frames": torch.randn(int(torch.randint(16, 41, (1,), generator=g)), D, generator=g),
             "hidden": torch.randn(L, D, generator=g), "pooled": torch.randn(D, generator=g),
             "prior": torch.randn(D, generator=g), "text": "x", "id": str(i)} for i in range(n)]


def python_sampling(module):
    """The reference's per-clip sampling: Python's random over one clip's frame indices."""
    K = module.hparams.frames_per_clip

    def sample(lengths: torch.Tensor) -> torch.Tensor:
        n = int(lengths[0])
        between = sorted(random.sample(range(1, n - 1), K - 2))
        return torch.tensor([[0, *between, n - 1]])

    return sample


def one_prediction_at_a_time(module):
    """The reference's forward pass: one prediction per call, its text (rotated where a step rotates it)
    materialised and encoded for that prediction alone."""
    net = module.net

    def predict(hidden, start, rise, rotation=None, text_normalized=False):
        if isinstance(hidden, SharedText):  # the text tensor: each prediction below projects its own copy
            hidden, text_normalized = hidden.text, True
        if start.ndim == 2:
            start, rise = start[:, None], rise.reshape(-1, 1)
            rotation = None if rotation is None else (rotation[0][:, None], rotation[1][:, None],
                                                      rotation[2].reshape(-1, 1))
        text = hidden if text_normalized else net.normalize_text(hidden)
        outs = []
        for j in range(start.shape[1]):
            t = text if rotation is None else soft_rotate(text, rotation[0][:, j], rotation[1][:, j], rotation[2][:, j])
            outs.append(net(t, start[:, j], rise[:, j], text_normalized=True).float())
        return torch.stack(outs, dim=1)

    return predict


def run(module, batches: list[dict], bf16: bool) -> float:
    if not hasattr(module, "bench_optimizer"):  # one optimizer per module, kept across calls
        module.bench_optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    opt = module.bench_optimizer
    module.train()
    start = time.perf_counter()
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = module.training_step(batch, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="splitter_dual")
    parser.add_argument("--clips", type=int, default=256, help="clips timed per loop (after a warm-up)")
    parser.add_argument("--batch", type=int, default=64, help="clips per optimizer step in our loop")
    parser.add_argument("--frames-per-clip", type=int, default=None,
                        help="frames sampled per clip per step (default: the model config's, 4)")
    args = parser.parse_args()
    torch.manual_seed(0)
    random.seed(0)

    counts = {}
    for name in ("splitter", "splitter_next", "splitter_dual", "splitter_dual_csa"):
        counts[name] = sum(p.numel() for p in build(name).net.parameters())
        print(f"{name:>18}: {counts[name] / 1e6:6.2f} M parameters at D={D}, L={L}")

    clips = fake_clips(args.clips + args.batch)
    warm, timed = clips[: args.batch], clips[args.batch :]
    results = {"model": args.model, "clips": args.clips, "batch": args.batch, "params": counts,
               "frames_per_clip": build(args.model, args.frames_per_clip).hparams.frames_per_clip,
               "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads()}
    precisions = [False, True] if cpu_supports_bf16() else [False]
    for bf16 in precisions:
        label = "bf16" if bf16 else "fp32"
        ours = build(args.model, args.frames_per_clip)
        run(ours, [collate_embeddings(warm)], bf16)
        reference = build(args.model, args.frames_per_clip)
        reference.sample_frames = python_sampling(reference)
        reference._predict = one_prediction_at_a_time(reference)
        run(reference, [collate_embeddings([c]) for c in warm[:4]], bf16)
        # interleaved rounds over the same clips: a shared machine's speed drifts, and both loops see the same drift
        ours_s, ref_s, ratios = 0.0, 0.0, []
        for i in range(0, len(timed), args.batch):
            chunk = timed[i : i + args.batch]
            o = run(ours, [collate_embeddings(chunk)], bf16)
            r = run(reference, [collate_embeddings([c]) for c in chunk], bf16)
            ours_s, ref_s = ours_s + o, ref_s + r
            ratios.append(r / o)
        results[label] = {"ours_clips_per_s": args.clips / ours_s, "per_clip_loop_clips_per_s": args.clips / ref_s,
                          "speedup": ref_s / ours_s, "speedup_per_round": ratios}
        print(f"{label}: ours {args.clips / ours_s:7.1f} clips/s ({args.batch} clips per step) | per-clip loop "
              f"{args.clips / ref_s:6.1f} clips/s | {ref_s / ours_s:5.1f}x (rounds of {args.batch} clips: "
              f"{min(ratios):.1f}x to {max(ratios):.1f}x)")
    suffix = f"_k{args.frames_per_clip}" if args.frames_per_clip else ""
    out = ROOT / "bench" / "results" / f"splitter_throughput{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
