"""Run-time facts about the machine that configs depend on."""

from __future__ import annotations

import contextlib
import functools

import torch


@functools.cache
def cpu_supports_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_precision() -> str:
    """Lightning precision for hardware=cpu: bf16 autocast if native, else fp32."""
    return "bf16-mixed" if cpu_supports_bf16() else "32-true"


def inference_autocast(device: torch.device | str):
    """The autocast a trained model samples under outside the Trainer: bf16 on a capable CPU, none elsewhere."""
    device = torch.device(device)
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
