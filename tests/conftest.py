"""Compose the real configs from conf/ in tests, with every output under a temporary folder."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from omegaconf import DictConfig

from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.compose import CONF  # noqa: F401 (test files import CONF and compose_cfg from here)
from t2vlab.tasks.compose import compose_run as compose_cfg

register_resolvers()

# Under pytest-xdist each worker gets its share of the cores: torch's default, a thread per core in every worker
# (and in every train.py the tests start), oversubscribes the machine, and spinning OpenMP threads then cost
# several times the work itself.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))  # for the subprocesses
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


class ForeignLoss:
    """A loss of another family, to check that a model refuses it."""

    family = "splitter"


@pytest.fixture(autouse=True, scope="session")
def wandb_data_dir(tmp_path_factory):
    """W&B stages the files of a logged table (the evaluation's clips) in its data folder until `wandb sync`;
    offline test runs are never synced, so theirs go to a temporary folder, not ~/.local/share/wandb."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_DATA_DIR", str(tmp_path_factory.mktemp("wandb-data")))
        yield


@pytest.fixture
def train_cfg(tmp_path):
    """Factory: a debug=fast training config with the given overrides, writing under tmp_path."""

    def make(*overrides: str, name: str = "run") -> DictConfig:
        return compose_cfg("train", ["debug=fast", "logger=none", "print_config=false", *overrides],
                           tmp_path / name)

    return make


def load_script(name: str) -> ModuleType:
    """A file of scripts/ as a module (they are run as files, not imported as a package); registered in
    sys.modules under its name, where dataclasses look their module up."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a train.py/evaluate.py subprocess. Without WANDB_SERVICE: W&B runs started in this
    pytest process export it, and a child that inherits it shares this process's W&B service instead of
    starting its own, as it would from a shell (a killed child's run id then stays "in use" there)."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    return {**env, "WANDB_SILENT": "true", **extra}


class _ScriptedDetector(torch.nn.Module):
    """Stands in for styleganv's i3d_torchscript.pt: the same call, a much smaller network."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 400)

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        assert not rescale and not resize and return_features
        return self.head(x.mean(dim=(2, 3, 4)))


@pytest.fixture(scope="session")
def alexnet_file(tmp_path_factory) -> Path:
    """A randomly initialised AlexNet saved like torchvision's state dict (features.* plus a classifier): the
    LPIPS backbone for the metric and the MAGVIT tokenizer's perceptual loss, offline."""
    from t2vlab.pretrained.alexnet_lpips import AlexNetFeatures

    torch.manual_seed(0)
    state = AlexNetFeatures().state_dict()
    state["classifier.1.weight"] = torch.zeros(4, 9216)  # torchvision's file has one; LPIPS ignores it
    path = tmp_path_factory.mktemp("lpips") / "alexnet-random.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def scripted_i3d(tmp_path_factory) -> Path:
    """A TorchScript FVD detector file (styleganv's calling convention) that runs in milliseconds."""
    path = tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_ScriptedDetector()), str(path))
    return path


class InterruptAt:
    """A callback that presses Ctrl-C when training reaches a batch."""

    def __new__(cls, batch: int):
        import pytorch_lightning as pl

        class _Interrupt(pl.Callback):
            def on_train_batch_start(self, trainer, module, b, batch_idx):
                if batch_idx == batch:
                    raise KeyboardInterrupt

        return _Interrupt()


@pytest.fixture(scope="session")
def circles_unclip_stack(tmp_path_factory) -> Path:
    """A circles_unclip stack from a 4-step run of experiment=circles_unclip (untrained, but real and
    loadable through backbone=circles_unclip): D=64, L=16, 64x64 frames."""
    from t2vlab.tasks.train import train

    tmp = tmp_path_factory.mktemp("circles_unclip_stack")
    export = tmp / "stack"
    cfg = compose_cfg("train", ["experiment=circles_unclip", "debug=fast", "logger=none", "print_config=false",
                                "model.ae_steps=2", "model.quality_clips=2", "model.stats_clips=8",
                                f"model.export_dir={export}"], tmp / "run")
    train(cfg)
    return export
