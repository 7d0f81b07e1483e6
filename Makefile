# The two commands: `make run` and `make test`. Both set up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck install bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Starts the server on SQLite with demo data (port 8000) and the app at http://127.0.0.1:8550.
run: install
	$(BIN)/python -m app.dev

lint: install
	$(BIN)/ruff check app sync server tests benchmarks

typecheck: install
	$(BIN)/mypy sync server app

test: lint typecheck
	$(BIN)/python -m pytest

# Refreshes docs/screenshots/ (demo data only) from the browser tests.
screenshots: install
	LIAISON_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/e2e

bench: install
	$(BIN)/python -m benchmarks.store --records 10000
	$(BIN)/python -m benchmarks.photos
	$(BIN)/python -m benchmarks.sync
	$(BIN)/python -m benchmarks.server --devices 200

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
