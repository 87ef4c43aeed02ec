# The README's three commands: make setup, make demo, make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint dryrun-example

# A virtual environment with every pinned dependency (requirements.lock) and heliocube itself, editable.
setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
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
