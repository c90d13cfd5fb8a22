# The two quick-start commands: `make train` and `make test`. Both create .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup train test lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

train: $(STAMP)
	@if [ ! -f train.py ]; then echo "train.py is not built yet (issue 2 in progress); see README"; exit 2; fi
	$(PY) train.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV)
