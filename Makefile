# Everything a fresh machine with only python3, make and pyenv's Pythons needs: `make demo` and
# `make test`.
#
# `make test` runs the whole suite (lint, types, tests) twice: on `python3` (Python 3.11, whose
# newest zarr is 3.1.x) in .venv, and on Python 3.13 (the newest zarr 3.x) in .venv-3.13.
#
#   PYTHON     the Python of the venv $(VENV) is made with (default python3). It only matters when
#              the venv is made: to try another Python, give another VENV as well, e.g.
#              make demo PYTHON=/path/to/python3.13 VENV=.venv-demo
#   VENV       the venv `demo`, `lint`, `suite` and `bench` use (default .venv)
#   PYTHON313  the Python 3.13 of the second run (default: the newest 3.13 pyenv has, else a
#              python3.13 on PATH); VENV313 its venv (default .venv-3.13)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV313 ?= .venv-3.13

ifeq ($(origin PYTHON313), undefined)
PYTHON313 := $(shell \
	version=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13\.[0-9]+$$' | sort -V | tail -n 1); \
	{ [ -n "$$version" ] && PYENV_VERSION=$$version pyenv which python3.13; } 2>/dev/null \
	|| command -v python3.13)
endif

.PHONY: demo test suite lint bench clean check-python313 tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp files re-run pip whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

lint: $(VENV)/.installed-test
	@$(BIN)/python -c "import sys, zarr; print(f'== $(VENV): Python {sys.version.split()[0]}, zarr {zarr.__version__}')"
	$(BIN)/ruff check bluesky_zarr tests benchmarks examples
	$(BIN)/ruff format --check bluesky_zarr tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# lint, types and tests in one venv, $(VENV)
suite: lint
	$(BIN)/python -m pytest

# The fault tests fail real syscalls of a real process (an EIO at an fsync) with strace: installed
# from Debian when it is missing and we may (root); without it those tests are skipped, and say so.
tools:
	@command -v strace >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q strace >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q strace >/dev/null; }; }; } || \
	  echo "make test: strace is missing (install it, as root: apt-get install strace); the tests that fail syscalls are skipped"

test: check-python313 tools
	$(MAKE) --no-print-directory suite VENV=$(VENV) PYTHON=$(PYTHON)
	$(MAKE) --no-print-directory suite VENV=$(VENV313) PYTHON=$(PYTHON313)

check-python313:
	@"$(PYTHON313)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
	  echo "make test: PYTHON313='$(PYTHON313)' is not a Python 3.13, and the suite runs on Python 3.13 too" \
	       "(with the newest zarr 3.x). Install one (pyenv install 3.13) or name it:" \
	       "make test PYTHON313=/path/to/python3.13" >&2; exit 1; }

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_zarr_writer.py
	$(BIN)/python benchmarks/bench_writer_peers.py
	$(BIN)/python benchmarks/bench_table_writers.py
	$(BIN)/python benchmarks/bench_compression.py

clean:
	rm -rf $(VENV) $(VENV313) experiment.zarr experiment
