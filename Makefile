# The README's three commands: make setup, make demo, make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint dryrun-example

# torch is pinned as its CPU build (2.13.0+cpu): the registry's default build carries CUDA (5.4 GB). Where the
# machine keeps a local wheel folder (/opt/wheels, usually named by PIP_FIND_LINKS too) pip takes it from there;
# elsewhere from PyTorch's CPU wheel index. Override with `make setup TORCH_WHEELS="--find-links DIR"`.
WHEEL_DIR ?= /opt/wheels
TORCH_WHEELS ?= $(if $(wildcard $(WHEEL_DIR)),--find-links $(WHEEL_DIR),--extra-index-url https://download.pytorch.org/whl/cpu)

# A virtual environment with every pinned dependency (requirements.lock) and heliocube itself, editable.
setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_WHEELS) -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .

# The main job on the embedded default (config/config.yaml): starts the local archive, queries, fetches.
demo:
	$(BIN)/snakemake --profile profiles/local

test:
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

dryrun-example:
	$(BIN)/snakemake -n --quiet rules --configfile config/examples/soho-1999-2010-6h.yaml
