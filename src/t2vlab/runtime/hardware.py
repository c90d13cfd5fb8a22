"""Run-time facts about the machine that configs depend on."""

from __future__ import annotations

import contextlib
import functools

import torch


def _cpu_flag(name: str) -> bool:
    """torch's own CPU feature probe (`torch.cpu._is_<name>_supported`); False where this torch lacks it."""
    probe = getattr(torch.cpu, f"_is_{name}_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


@functools.cache
def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 instructions (AVX512-BF16 or AMX tiles).

    oneDNN's own answer (`torch.ops.mkldnn._is_mkldnn_bf16_supported`) is also True on AVX512 CPUs without
    either, where bf16 is emulated and trains 1.15-2.1x slower than fp32 (docs/runs.md); that is why it is not used.
    """
    return _cpu_flag("avx512_bf16") or _cpu_flag("amx_tile")


def cpu_precision() -> str:
    """Lightning precision for hardware=cpu: bf16 autocast if native, else fp32."""
    return "bf16-mixed" if cpu_supports_bf16() else "32-true"


def inference_autocast(device: torch.device | str):
    """The autocast a trained model samples under outside the Trainer: bf16 on a capable CPU, none elsewhere."""
    device = torch.device(device)
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def torch_device(accelerator: str = "cpu") -> str:
    """A Lightning accelerator name -> the torch device a frozen backbone runs on."""
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def backbone_dtype(precision: str = "32-true") -> str:
    """A Lightning precision -> the dtype a frozen backbone's weights are loaded in (fp16 on a T4, bf16 on an
    A10 or a bf16-capable CPU, fp32 otherwise)."""
    precision = str(precision)
    if precision.startswith("bf16"):
        return "bfloat16"
    if precision.startswith("16"):
        return "float16"
    return "float32"


def inference_device(name: str, key: str = "device") -> torch.device:
    """Where a trained model generates outside the Trainer: auto (the GPU where torch sees one), cpu or cuda."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"{key}={name} is invalid; allowed: auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key}=cuda is invalid here: torch sees no CUDA device; allowed: auto, cpu")
    return torch.device(torch_device(name))
