# One task runner for people and CI. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The CPU torch wheel lies in /opt/wheels on these machines; elsewhere pip takes torch==2.13.0 from PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo test test-fast test-faults test-security lint fmt bench clean train-guardrails

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "setting up $(VENV): the first install downloads the dependencies (a few minutes; pip shows each one)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --progress-bar off $(FIND_LINKS) -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/ragharness run goldsets/support/harness.yaml

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration and not faults"

test-faults: setup
	$(BIN)/python -m pytest -m faults

test-security: setup
	$(BIN)/python -m pytest -m security

# Rebuild the local guardrail detectors' heads (ragharness/guardrails/weights/) from training/guardrails/data.
train-guardrails: setup
	$(BIN)/python training/guardrails/train.py

lint: setup
	$(BIN)/ruff check ragharness tests benchmarks training
	$(BIN)/ruff format --check ragharness tests benchmarks training
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff format ragharness tests benchmarks training
	$(BIN)/ruff check --fix ragharness tests benchmarks training

clean:
	rm -rf $(VENV) .ragharness runs .pytest_cache .mypy_cache .ruff_cache
