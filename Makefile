# graphpost — the two commands are `make run` and `make test`.
# Python 3.11 or newer; python3.11 if it is on PATH, else python3
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIPFLAGS := --disable-pip-version-check --quiet

.PHONY: run test lint typecheck pytest bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# the locked pip first: Python 3.11's own (23.2) refuses the dev lock under --require-hashes
$(VENV)/.pip-stamp: requirements-pip.lock | $(BIN)/python
	$(BIN)/python -m pip install $(PIPFLAGS) --require-hashes -r requirements-pip.lock
	touch $@

# runtime dependencies only, from the hashed lock
$(VENV)/.run-stamp: requirements.lock pyproject.toml | $(VENV)/.pip-stamp
	$(BIN)/pip install $(PIPFLAGS) --require-hashes -r requirements.lock
	$(BIN)/pip install $(PIPFLAGS) --no-deps --no-build-isolation -e .
	touch $@

# runtime + development tools (a superset of the runtime lock)
$(VENV)/.dev-stamp: requirements-dev.lock pyproject.toml | $(VENV)/.pip-stamp
	$(BIN)/pip install $(PIPFLAGS) --require-hashes -r requirements-dev.lock
	$(BIN)/pip install $(PIPFLAGS) --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.run-stamp

run: $(VENV)/.run-stamp
	GRAPHPOST_EMULATOR=$${GRAPHPOST_EMULATOR:-true} $(BIN)/graphpost serve

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples

typecheck: $(VENV)/.dev-stamp
	$(BIN)/mypy

# branch coverage of src/graphpost inside pytest (see pyproject.toml for why not the servers);
# the floor is for the whole suite: a run of chosen tests (PYTEST_ARGS) only reports
COVFLAGS = --cov --cov-report=term $(if $(PYTEST_ARGS),--cov-fail-under=0)

# in parallel (pytest-xdist): one worker per CPU, at most 4; a test module stays on one worker
# (its module fixtures are made once). PYTEST_WORKERS=0 runs it in this one process.
PYTEST_WORKERS ?= logical
XDISTFLAGS = -n $(PYTEST_WORKERS) $(if $(filter-out 0,$(PYTEST_WORKERS)),--maxprocesses 4 --dist loadfile)

pytest: $(VENV)/.dev-stamp
	$(BIN)/python -m pytest -q $(XDISTFLAGS) $(COVFLAGS) $(PYTEST_ARGS)

test: lint typecheck pytest

# benchmarks: real processes and wrk (installed from Debian's packages when missing)
bench: $(VENV)/.dev-stamp
	@command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq wrk; }; } || \
	  { echo "make bench needs wrk: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench $(BENCH_ARGS)

# re-pin the locks after changing dependencies in pyproject.toml
lock: $(VENV)/.dev-stamp
	$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --no-emit-find-links \
	  --no-emit-index-url --strip-extras -o requirements.lock pyproject.toml requirements-build.in
	sed -e 's/ \\$$//' -e '/^ *--hash/d' -e '/^ *#/d' requirements.lock > $(VENV)/constraints.txt
	$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --no-emit-find-links \
	  --no-emit-index-url --strip-extras --extra dev -c $(VENV)/constraints.txt \
	  -o requirements-dev.lock pyproject.toml requirements-build.in

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.* htmlcov
