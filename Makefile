# Bitstream-corrupted JPEG restoration toolkit. `make demo` and `make test` are the whole set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# CPU machines: the pinned CPU build of torch (an unpinned torch pulls a multi-GB CUDA build).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

export WANDB_MODE ?= offline
export PYTHONDONTWRITEBYTECODE ?=

.DEFAULT_GOAL := help
.PHONY: wheels photos-small help install demo test test-slow test-gpu fuzz bench bench-gpu notebooks lint format clean photos sync-wandb

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)" -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (idempotent; instant when up to date)

demo: $(STAMP)  ## run the pipeline end to end on the bundled photos -> outputs/demo/
	$(BIN)/python -m src.demo

test: $(STAMP)  ## fast test suite (no slow / gpu tests)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)  ## slow checks only (fuzzing, DDP, sweeps, notebooks)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

test-gpu: $(STAMP)  ## GPU-only checks (needs CUDA)
	$(BIN)/python -m pytest -q -m gpu $(PYTEST_ARGS)

fuzz: $(STAMP)  ## decoder fuzzing, >= 100k mutated inputs
	$(BIN)/python -m pytest -q -m slow tests/test_jpeg_fuzz.py $(PYTEST_ARGS)

CPU_BENCHMARKS := corruption decoder sca_quality datamodule train_step short_epochs sca_scaling
GPU_BENCHMARKS := gpu_throughput gpu_pipeline
bench: $(STAMP)  ## CPU speed/quality benchmarks (ratios against baselines measured in the same run)
	@for b in $(CPU_BENCHMARKS); do \
	  echo "== benchmarks/$$b.py"; $(BIN)/python -m benchmarks.$$b || exit 1; done

bench-gpu: $(STAMP)  ## GPU benchmarks (training throughput, DDP scaling, input pipeline; BENCH_ARGS for both)
	@for b in $(GPU_BENCHMARKS); do \
	  echo "== benchmarks/$$b.py"; $(BIN)/python -m benchmarks.$$b $(BENCH_ARGS) || exit 1; done

notebooks: $(STAMP)  ## re-run the three notebooks and store them executed (small embedded PNGs; a few minutes)
	@for nb in notebooks/*.ipynb; do echo "== $$nb"; $(BIN)/python -c 'import sys, nbclient, nbformat; \
	  nb = nbformat.read(sys.argv[1], as_version=4); \
	  nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3", record_timing=False, \
	    resources={"metadata": {"path": "notebooks"}}).execute(); \
	  nbformat.write(nb, sys.argv[1])' "$$nb" || exit 1; done

photos:  ## install Debian's mate-backgrounds (large real photos for benchmarks), needs root
	@test -d /usr/share/backgrounds/mate || (apt-get update -qq && apt-get install -y -qq mate-backgrounds)

lint: $(STAMP)  ## ruff check
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(STAMP)  ## ruff format + autofix
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

photos-small: photos  ## a portable copy of the mate nature photos at 2048 px -> .photos/ (~6.5 MiB)
	$(BIN)/python -m scripts.shrink_photos --out .photos

sync-wandb:  ## upload offline wandb runs (needs `wandb login`)
	$(BIN)/wandb sync $$(find logs outputs -type d -name 'offline-run-*' 2>/dev/null)

clean:  ## remove caches and outputs (keeps .venv)
	rm -rf outputs logs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

wheels:  ## wheels of the small pure-Python dependencies -> .whl/ (for a machine with torch but no index)
	bash scripts/offline_wheels.sh .whl
