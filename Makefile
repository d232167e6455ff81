# Set-up and checks. `make demo` and `make test` work from a fresh clone.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out

.PHONY: demo test lint install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Base install: the runtime and the CLI.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/nuggy models pull u2netp
	$(BIN)/nuggy remove examples/ -o $(OUT)/ --overwrite
	@echo "Cut-outs written to $(OUT)/"

# Test extras (PyTorch from this machine's disk, the web stack, plotting, Ray Data: ~80 MB wheel).
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,torch,train,server,ui,eval,ray,video]'
	# Reference implementation for the DIS-metric tests; --no-deps: its pins would replace
	# our OpenCV build and downgrade numpy. Used by the tests only, never imported by nuggy.
	$(BIN)/python -m pip install -q --no-deps pysodmetrics
	touch $@

install-test: $(VENV)/.installed-test

# Lint and format check (ruff, configured in pyproject.toml); CI runs it before the tests.
lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: install-test
	$(BIN)/nuggy models pull u2netp
	$(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(OUT) .pytest_cache build src/*.egg-info
