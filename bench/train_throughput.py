"""Training throughput of any recipe through the real training loop, with the FLOP/s it achieves.

    .venv/bin/python bench/train_throughput.py EXPERIMENT [OVERRIDE ...] [--iterations 30] [--warmup 5]
        [--precisions 32-true bf16-mixed]

`--profile N` then profiles N iterations of the first precision in a fit of their own (torch.profiler, CPU time
per operator; a profiled step is slower, so its time is not a throughput figure).

e.g. `bench/train_throughput.py keypoint_vae_circles` (the default recipe) or
`bench/train_throughput.py magvit_tokenizer_circles`. For each precision it times `trainer.fit` on the composed
config (the data module, LightningModule and Trainer that `train.py` builds; no logger, checkpoints, sampling or
end-of-fit work), skipping the first iterations as warm-up, and reports clips/s and frames/s with the FLOP/s
achieved against the matmul peaks of the same process (MFU; the FLOPs of one warm-up iteration counted by
t2vlab.runtime.flops). Results are printed and written to bench/results/<experiment>_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from t2vlab.runtime.flops import StepFlopCounter, Utilisation, measure_peaks
from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.common import build_data_and_backbone, build_model, model_class

ROOT = Path(__file__).resolve().parents[1]


class IterationTimer(pl.Callback):
    """Wall time of the iterations after `warmup`, measured between batch starts (on a GPU once its queued work
    is done)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.count, self.start, self.end = warmup, 0, None, None

    @staticmethod
    def _now(module) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.count == self.warmup:
            self.start = self._now(module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.count += 1
        if self.count > self.warmup:
            self.end = self._now(module)


def compose_config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
        if cfg.model.get("prior_fit_steps"):  # the keypoint VAE's once-per-run fit at the last step
            cfg = compose("train", overrides=overrides + ["model.prior_fit_steps=0"])
    return cfg


def fit_for(overrides: list[str], precision: str, iterations: int, callbacks: list[pl.Callback],
            accelerator: str = "cpu"):
    """trainer.fit on the composed config (the data module and model train.py builds; for the Splitter its backbone
    and cached embeddings) with `callbacks`, stopped once `iterations` batches have run. Lightning's max_steps
    counts optimiser steps (two per iteration for a GAN), so the fit is given room for twice as many.
    Returns (config, data module)."""
    cfg = compose_config(overrides)
    if model_class(cfg).needs_backbone:
        dm, backbone = build_data_and_backbone(cfg)
    else:
        dm, backbone = instantiate(cfg.dataset, cache_dir=None), None
    module = build_model(cfg, dm.vocab, backbone)

    class Stop(pl.Callback):
        def __init__(self) -> None:
            self.batches = 0

        def on_train_batch_end(self, trainer, *_):
            self.batches += 1
            trainer.should_stop = self.batches >= iterations

    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=2 * iterations,
                         max_epochs=10_000, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[*callbacks, Stop()])
    trainer.fit(module, datamodule=dm)
    return cfg, dm


def measure(overrides: list[str], precision: str, iterations: int, warmup: int,
            peaks: tuple[float, float], accelerator: str = "cpu") -> dict:
    """Times `iterations` training iterations of the composed config after `warmup` ones."""
    timer, flops = IterationTimer(warmup), StepFlopCounter(batch_index=0)
    cfg, dm = fit_for(overrides, precision, warmup + iterations, [timer, flops], accelerator)
    frames_per_batch = getattr(dm, "frames_per_batch", dm.batch_size * cfg.dataset.settings.num_frames)
    seconds = timer.end - timer.start
    measured = timer.count - warmup
    use = Utilisation(flops.flops, measured / seconds, *peaks)
    return {"overrides": overrides, "precision": precision, "batch": dm.batch_size,
            "frames_per_batch": frames_per_batch, "iterations": measured, "seconds": round(seconds, 3),
            "clips_per_second": round(measured * dm.batch_size / seconds, 2),
            "frames_per_second": round(measured * frames_per_batch / seconds, 1),
            "utilisation": use.as_dict(), "utilisation_line": use.line()}


class ProfileIterations(pl.Callback):
    """torch.profiler over `count` iterations after `warmup`."""

    def __init__(self, warmup: int, count: int) -> None:
        self.warmup, self.count, self.seen, self.profiler = warmup, count, 0, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.seen == self.warmup:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.__enter__()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen == self.warmup + self.count:
            self.profiler.__exit__(None, None, None)


def profile(overrides: list[str], precision: str, warmup: int, count: int, rows: int = 20) -> dict:
    """The operators that took the most CPU time over `count` training iterations: their share of the total."""
    probe = ProfileIterations(warmup, count)
    fit_for(overrides, precision, warmup + count, [probe])
    events = probe.profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return {"precision": precision, "iterations": count, "total_cpu_ms": round(total / 1000, 1),
            "operators": [{"name": e.key, "share": round(e.self_cpu_time_total / total, 4), "calls": e.count}
                          for e in top]}


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def report_line(r: dict) -> str:
    return (f"batch {r['batch']:>3} ({r['frames_per_batch']:>3} frames) {r['precision']:>10}: "
            f"{r['clips_per_second']:8.2f} clips/s, {r['frames_per_second']:8.1f} frames/s over {r['iterations']} "
            f"iterations\n    {r['utilisation_line']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="a recipe of conf/experiment/, e.g. keypoint_vae_circles")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides on top of it")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N iterations of the first precision (operators by CPU time)")
    parser.add_argument("--out", default=None, help="default: bench/results/<experiment>_throughput.json")
    args = parser.parse_args(argv)
    if not (ROOT / "conf" / "experiment" / f"{args.experiment}.yaml").is_file():
        choices = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
        parser.error(f"no experiment {args.experiment!r}; choose from {', '.join(choices)}")
    register_resolvers()
    peaks = measure_peaks()
    overrides = [f"experiment={args.experiment}", *args.overrides]
    results = [measure(overrides, p, args.iterations, args.warmup, peaks) for p in args.precisions]
    report = {"experiment": args.experiment, "machine": machine(), "results": results}
    for r in results:
        print(f"{args.experiment} {report_line(r)}")
    if args.profile:
        report["profile"] = profile(overrides, args.precisions[0], args.warmup, args.profile)
        print(f"operators by CPU time over {args.profile} iterations ({args.precisions[0]}, profiled):")
        for op in report["profile"]["operators"]:
            print(f"    {100 * op['share']:5.1f}%  {op['name']} ({op['calls']} calls)")
    out = Path(args.out or ROOT / "bench" / "results" / f"{args.experiment}_throughput.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")
    return report


if __name__ == "__main__":
    main()
