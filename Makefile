# Two set-up commands: `make demo` and `make test` (see README).
# Override the interpreter with `make PYTHON=python3.13 test`.
PYTHON ?= python3.12
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-seeds lint bench calibrate notebooks lock clean

# pyenv installs python3.12 but may not put it on the global path: fall back to its own copy.
PYTHON_EXE := $(shell command -v $(PYTHON) >/dev/null 2>&1 && $(PYTHON) -c 'import sys' >/dev/null 2>&1 \
	&& echo $(PYTHON) || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/$(PYTHON) 2>/dev/null | tail -n 1)

# constraints.txt pins every installed package (reproducible installs for make and CI);
# `make lock` refreshes it from a fresh, unconstrained install of pyproject's ranges.
$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON_EXE)" || { echo "error: $(PYTHON) not found; install Python >= 3.12 or run 'make PYTHON=python3.13 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON_EXE) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hiermodels demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# the slow (real MCMC) tests under two other seed offsets: a test that passes only for one
# draw of chance fails here
test-seeds: $(STAMP)
	HIERMODELS_TEST_SEED_OFFSET=1 $(BIN)/python -m pytest -m slow
	HIERMODELS_TEST_SEED_OFFSET=2 $(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check hiermodels tests benchmarks
	$(BIN)/ruff format --check hiermodels tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_radon.py
	$(BIN)/python benchmarks/bench_meta.py
	$(BIN)/python benchmarks/bench_radon_ess.py
	$(BIN)/python benchmarks/bench_crossed.py
	# fresh-process fits against bambi (set BAMBI_PYTHON to a separate venv's python; see the script)
	$(BIN)/python benchmarks/bench_coldstart.py

# simulation-based calibration of the engines (about 10 minutes; not part of `make test`)
calibrate: $(STAMP)
	$(BIN)/python benchmarks/bench_calibration.py

# re-execute every teaching notebook with full draws and save its outputs
notebooks: $(STAMP)
	$(BIN)/python notebooks/run.py

lock:
	rm -rf .lock-venv
	$(PYTHON_EXE) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lock-venv
	@echo "constraints.txt refreshed; run make test before committing it"

clean:
	rm -rf $(VENV) build *.egg-info
