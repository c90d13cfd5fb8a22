"""Training throughput of the GAN family, in frames per second, through the real training loop.

    .venv/bin/python bench/gan_throughput.py [--model gan] [--iterations 60] [--precisions 32-true bf16-mixed]

For each precision it times `trainer.fit` on the composed config (the data module, LightningModule and
Trainer that `train.py` builds; no logger, checkpoints or sampling), skipping the first iterations as
warm-up, and reports frames/s for the write-up's setup (batches of 16 single frames) and for our default
batch (32 clips x 10 frames), with the FLOP/s achieved against the matmul peaks of the same process (MFU; the
FLOPs of one warm-up iteration counted by t2vlab.runtime.flops). Results are printed and written to
bench/results/gan_throughput.json.
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
from t2vlab.tasks.common import build_model

ROOT = Path(__file__).resolve().parents[1]


class IterationTimer(pl.Callback):
    """Wall time of the iterations after `warmup`, measured between batch starts."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.count, self.start, self.end = warmup, 0, None, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.count == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.count += 1
        self.end = time.perf_counter()


def measure(model: str, setup: str, precision: str, iterations: int, warmup: int, peaks: tuple[float, float]) -> dict:
    overrides = ["experiment=video_gan_circles", f"model={model}", "loss=gan_bce", "dataset.settings.num_videos=2000"]
    if setup == "blog":
        overrides += ["dataset.batch_size=16", "dataset.as_frames=true"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    dm = instantiate(cfg.dataset, cache_dir=None)
    module = build_model(cfg, dm.vocab)
    timer, flops = IterationTimer(warmup), StepFlopCounter(batch_index=0)
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=2 * (warmup + iterations),
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer, flops])
    trainer.fit(module, datamodule=dm)
    seconds = timer.end - timer.start
    measured = timer.count - warmup
    frames = measured * dm.frames_per_batch
    use = Utilisation(flops.flops, measured / seconds, *peaks)
    return {"model": model, "setup": setup, "precision": precision, "batch": dm.batch_size,
            "frames_per_batch": dm.frames_per_batch, "iterations": measured, "seconds": round(seconds, 3),
            "frames_per_second": round(frames / seconds, 1), "utilisation": use.as_dict(),
            "utilisation_line": use.line()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gan")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    args = parser.parse_args()
    register_resolvers()
    peaks = measure_peaks()
    results = [measure(args.model, setup, precision, args.iterations, args.warmup, peaks)
               for setup in ("blog", "default") for precision in args.precisions]
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__}, "results": results}
    for r in results:
        print(f"{r['model']:>10} {r['setup']:>8} batch {r['batch']:>3} ({r['frames_per_batch']:>3} frames) "
              f"{r['precision']:>10}: {r['frames_per_second']:8.1f} frames/s over {r['iterations']} iterations")
        print(f"{'':>21}{r['utilisation_line']}")
    out = ROOT / "bench" / "results" / f"{args.model}_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
