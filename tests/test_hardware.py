"""Where a trained model generates outside the Trainer, and the precision a CPU trains in."""

import platform
from pathlib import Path

import pytest
import torch


def test_the_inference_device_is_auto_cpu_or_an_available_cuda(monkeypatch):
    from t2vlab.runtime.hardware import inference_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert inference_device("auto") == torch.device("cpu") == inference_device("cpu")
    with pytest.raises(ValueError, match="device=cuda is invalid here: torch sees no CUDA device"):
        inference_device("cuda")


def _probes(monkeypatch, avx512_bf16: bool, amx: bool, onednn: bool):
    from t2vlab.runtime import hardware

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn, raising=False)
    hardware.cpu_supports_bf16.cache_clear()
    return hardware


@pytest.mark.parametrize(("avx512_bf16", "amx", "expected"), [
    (False, False, "32-true"), (True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (True, True, "bf16-mixed")])
def test_cpu_training_uses_bf16_only_with_native_bf16_instructions(monkeypatch, avx512_bf16, amx, expected):
    # oneDNN reports bf16 support on every AVX512 CPU (emulated there, 2-3x slower than fp32): it must not decide
    hardware = _probes(monkeypatch, avx512_bf16, amx, onednn=True)
    try:
        assert hardware.cpu_precision() == expected
        assert isinstance(hardware.inference_autocast("cpu"), torch.autocast) == (expected == "bf16-mixed")
    finally:
        hardware.cpu_supports_bf16.cache_clear()


@pytest.mark.skipif(platform.system() != "Linux" or not Path("/proc/cpuinfo").is_file(), reason="reads /proc/cpuinfo")
def test_native_bf16_matches_this_machines_cpu_flags():
    from t2vlab.runtime.hardware import cpu_supports_bf16

    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    assert cpu_supports_bf16() == ("avx512_bf16" in flags or "amx_tile" in flags)
