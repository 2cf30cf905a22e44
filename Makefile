# anvil-dev: `make demo` runs the product on a demo app, `make test` runs the whole suite,
# `make test-fast` only the in-process unit tier (tests/unit, seconds).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	@test -d demo || $(BIN)/anvil-dev init demo
	$(BIN)/anvil-dev --app demo serve

test: install
	$(BIN)/python -m pytest

# In-process, no server started: the codec, schedule maths, services, tables, the client's pieces.
test-fast: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bench_tables.py
	$(BIN)/python bench/bench_media.py
	$(BIN)/python bench/bench_uplink.py

lint: install
	$(BIN)/ruff check anvil_dev tests bench
	$(BIN)/mypy anvil_dev --ignore-missing-imports

clean:
	rm -rf $(VENV) build dist *.egg-info demo
