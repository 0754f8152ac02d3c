# The two commands of the README, and the linters CI runs. Each bootstraps .venv from the lock
# (requirements/lock.txt: exact versions and hashes) when it is missing or older than the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The raw files: a mirror folder of them when there is one beside the checkout, else downloaded.
DATA_MIRROR ?= $(wildcard $(CURDIR)/../shared/data)
CORES ?= 2
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)

.PHONY: report test lint
report: $(VENV)/.installed
	snakemake --cores $(CORES) $(if $(DATA_MIRROR),--config data_mirror=$(DATA_MIRROR))

test: $(VENV)/.installed
	python -m lmmflow.pipeline.environment requirements/lock.txt
	python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	snakemake --lint
	snakefmt --check .
	ruff check .
	ruff format --check .

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@
