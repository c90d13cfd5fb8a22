"""How close a loop runs to the machine's limit: the FLOPs of one step, counted by torch's FlopCounterMode (matrix
products and convolutions, forward and backward; elementwise work counts nothing), against the matmul peaks
measured in the same process.

    MFU = FLOPs per step x steps per second / peak FLOP/s

Both peaks are given: bf16 (the CPU default precision where the CPU has native bf16; with AMX about 7x fp32,
with AVX512-BF16 only about 2.3x) and fp32.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs torch dispatches while `step()` runs."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 1.0, device: str = "cpu") -> float:
    """The best FLOP/s of size x size matrix products in `dtype` over about `seconds` of repeats."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)  # the first call picks kernels
    if device != "cpu":
        torch.cuda.synchronize()
    best, spent = 0.0, 0.0
    while spent < seconds:
        start = time.perf_counter()
        torch.mm(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        took = time.perf_counter() - start
        spent += took
        best = max(best, 2 * size ** 3 / took)
    return best


@dataclass
class Utilisation:
    flops_per_step: int
    steps_per_second: float
    peak_bf16: float
    peak_fp32: float
    unit: str = "step"

    @property
    def achieved(self) -> float:
        return self.flops_per_step * self.steps_per_second

    def as_dict(self) -> dict:
        return {"flops_per_step": self.flops_per_step, "achieved_gflops": round(self.achieved / 1e9, 2),
                "peak_bf16_gflops": round(self.peak_bf16 / 1e9, 1),
                "peak_fp32_gflops": round(self.peak_fp32 / 1e9, 1),
                "mfu_bf16": round(self.achieved / self.peak_bf16, 4),
                "mfu_fp32": round(self.achieved / self.peak_fp32, 4)}

    def line(self) -> str:
        d = self.as_dict()
        return (f"{d['achieved_gflops']:.1f} GFLOP/s achieved ({self.flops_per_step / 1e9:.3f} GFLOP per {self.unit}); "
                f"MFU {100 * d['mfu_bf16']:.1f}% of the bf16 matmul peak ({d['peak_bf16_gflops']:.0f} GFLOP/s), "
                f"{100 * d['mfu_fp32']:.1f}% of the fp32 peak ({d['peak_fp32_gflops']:.0f} GFLOP/s)")


def measure_peaks(seconds: float = 1.0, device: str = "cpu") -> tuple[float, float]:
    """(bf16, fp32) matmul peaks of this process on `device`; on a GPU with larger matrices (2048 would leave
    most of its cores idle) and fp32 without TF32, torch's default for matrix products."""
    size = 8192 if device != "cpu" else 2048
    return (matmul_peak(torch.bfloat16, size, seconds, device),
            matmul_peak(torch.float32, size, seconds, device))


class StepFlopCounter(pl.Callback):
    """Counts the FLOPs of one training batch (`batch_index`, best a warm-up batch: counting slows it)."""

    def __init__(self, batch_index: int = 0) -> None:
        self.batch_index, self.flops, self._mode = batch_index, None, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self._mode is None and self.flops is None and batch_idx == self.batch_index:
            self._mode = FlopCounterMode(display=False)
            self._mode.__enter__()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self.flops = int(self._mode.get_total_flops())
            self._mode = None
