"""Where a trained model generates outside the Trainer."""

import pytest
import torch


def test_the_inference_device_is_auto_cpu_or_an_available_cuda(monkeypatch):
    from t2vlab.runtime.hardware import inference_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert inference_device("auto") == torch.device("cpu") == inference_device("cpu")
    with pytest.raises(ValueError, match="device=cuda is invalid here: torch sees no CUDA device"):
        inference_device("cuda")
