# anvil-dev: `make demo` runs the product on a demo app, `make test` runs the whole suite,
# `make test-fast` only the in-process unit tier (tests/unit, seconds).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The runtime alone (what `make demo` needs), and the runtime with the test and dev extras.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench lint dist clean

# anvil-dev's own modules compiled to bytecode, as a wheel's install leaves them. Where
# PYTHONDONTWRITEBYTECODE is set, an editable install would otherwise compile them from source at
# every start, in the host and again in the zygote: ~150 ms of each `serve`'s start. compileall
# redoes only files that changed; the app template and the browser's modules are left alone.
BYTECODE = $(BIN)/python -m compileall -q -x '/(templates|browser)/' anvil_dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

install: $(STAMP)

demo: $(RUNTIME_STAMP)
	@$(BYTECODE)
	@test -d demo || $(BIN)/anvil-dev init demo
	$(BIN)/anvil-dev --app demo serve

# Two pytest processes (pytest-xdist), a test file to each at a time, so a module's shared server or
# database is set up once: most of a test's time is spent waiting on the servers and browsers it
# starts (run in one process, the suite kept one core about half busy): on 2 cores it takes 7.5 min,
# not 11. `make test TEST_PROCESSES=0` runs it in this process alone.
TEST_PROCESSES ?= 2
test: install
	@$(BYTECODE)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile

# In-process, no server started: the codec, schedule maths, services, tables, the client's pieces
# (their PostgreSQL variants, marked `postgres`, need a database server and run in `make test`).
test-fast: install
	@$(BYTECODE)
	$(BIN)/python -m pytest tests/unit -m 'not postgres'

# bench/run.py compiles the bytecode of each tree it compares.
bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bench_anvil_persistent.py
	$(BIN)/python bench/bench_tables.py
	$(BIN)/python bench/bench_tables_client.py
	$(BIN)/python bench/bench_media.py
	$(BIN)/python bench/bench_uplink.py
	$(BIN)/python bench/bench_soak.py
	$(BIN)/python bench/bench_hosts.py

# mypy reads pyproject.toml: anvil_dev and the runtime's `anvil` package, unused ignores reported.
lint: install
	$(BIN)/ruff check anvil_dev tests bench
	$(BIN)/ruff format --check anvil_dev tests bench
	$(BIN)/mypy

# The sdist and wheel a release uploads, in dist/.
dist: install
	rm -rf dist
	$(BIN)/python -m build

clean:
	rm -rf $(VENV) build dist *.egg-info demo
