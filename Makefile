# Two set-up commands: `make demo` and `make test` (see README).
# Override the interpreter with `make PYTHON=python3.13 test`.
PYTHON ?= python3.12
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench notebooks clean

# pyenv installs python3.12 but may not put it on the global path: fall back to its own copy.
PYTHON_EXE := $(shell command -v $(PYTHON) >/dev/null 2>&1 && $(PYTHON) -c 'import sys' >/dev/null 2>&1 \
	&& echo $(PYTHON) || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/$(PYTHON) 2>/dev/null | tail -n 1)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_EXE)" || { echo "error: $(PYTHON) not found; install Python >= 3.12 or run 'make PYTHON=python3.13 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON_EXE) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hiermodels demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check hiermodels tests benchmarks
	$(BIN)/ruff format --check hiermodels tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_radon.py
	$(BIN)/python benchmarks/bench_meta.py
	$(BIN)/python benchmarks/bench_radon_ess.py
	$(BIN)/python benchmarks/bench_crossed.py

# re-execute every teaching notebook with full draws and save its outputs
notebooks: $(STAMP)
	$(BIN)/python notebooks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
