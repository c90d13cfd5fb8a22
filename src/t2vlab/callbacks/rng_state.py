"""Random number generator states in every checkpoint, restored on resume.

A resumed run then draws the same noise and the same data order as a run that was never stopped: with
checkpoints at epoch ends, killing and resuming gives the same weights as training straight through.
"""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


class RNGState(pl.Callback):
    """Tensors and plain containers only, so checkpoints still load with torch.load(weights_only=True)."""

    def state_dict(self) -> dict:
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        return {"torch": torch.get_rng_state(), "python": random.getstate(),
                "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                          "has_gauss": int(has_gauss), "gauss": float(gauss)}}

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        n = state["numpy"]
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
