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
.PHONY: gpu-wheels gpu-photos help install demo test test-slow test-gpu fuzz bench lint format clean photos sync-wandb notebooks

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

bench: $(STAMP)  ## CPU speed/quality benchmarks (ratios against baselines measured in the same run)
	@for b in corruption decoder sca_quality datamodule train_step short_epochs; do \
	  echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; done

notebooks: $(STAMP)  ## re-run the three notebooks and store them executed (small embedded PNGs; a few minutes)
	@for nb in notebooks/*.ipynb; do echo "== $$nb"; $(BIN)/python -c 'import sys, nbclient, nbformat; \
	  nb = nbformat.read(sys.argv[1], as_version=4); \
	  nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3", record_timing=False, \
	    resources={"metadata": {"path": "notebooks"}}).execute(); \
	  nbformat.write(nb, sys.argv[1])' "$$nb" || exit 1; done

photos:  ## install Debian's mate-backgrounds (large real photos for benchmarks), needs root
	@test -d /usr/share/backgrounds/mate || (apt-get update -qq && apt-get install -y -qq mate-backgrounds)

lint: $(STAMP)  ## ruff check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)  ## ruff format + autofix
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

gpu-photos: photos  ## real photos for a device call -> .photos/ (mate nature photos at 2048 px, ~6.5 MiB)
	$(BIN)/python benchmarks/gpu_photos.py --out .photos

sync-wandb:  ## upload offline wandb runs (needs `wandb login`)
	$(BIN)/wandb sync $$(find logs outputs -type d -name 'offline-run-*' 2>/dev/null)

clean:  ## remove caches and outputs (keeps .venv)
	rm -rf outputs logs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

GPU_WHEELS := hydra-core==1.3.8 omegaconf==2.3.1 kornia==0.9.0 kornia_rs==0.2.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 piexif==1.1.3
gpu-wheels:  ## cp312 wheels the GPU machines lack, into .whl/ (carry it; see README "GPU machines")
	@mkdir -p .whl
	@grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl $(GPU_WHEELS)
	$(PYTHON) -m pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w .whl
	@ls -la .whl
