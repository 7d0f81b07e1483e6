# The two commands: `make run` and `make test`. Both set up .venv on a fresh machine.
# `make phone-check` (part of `make test`) checks what `flet build apk/ipa` would package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Lock files pin every package with its hashes; .venv is installed from DEV_LOCK only: the
# phone's packages ([project].dependencies) plus the `server` and `dev` extras.
# `make lock` writes them from pyproject.toml (a later lock, say requirements/server.lock, adds
# its name to LOCKS and one line to `lock`); tests/test_lock.py fails when they disagree with
# pyproject.toml. `make lock` keeps the locked versions of indirect packages; to move them too:
# `make lock LOCK_FLAGS=--upgrade` (or `LOCK_FLAGS='--upgrade-package NAME'`).
DEV_LOCK := requirements/dev.lock
LOCKS := $(DEV_LOCK)
LOCK_FLAGS ?=
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --no-strip-extras --custom-compile-command 'make lock' $(LOCK_FLAGS)
# `make audit` fails on a package it could not check, not only on a known vulnerability.
AUDIT_FLAGS ?= --strict

.PHONY: run test lint typecheck install lock lock-check phone-check apk aab ipa audit bench \
	screenshots clean

# The lock's pip goes in first (it installs the rest far faster than the venv's own pip), then
# the lock, then the project itself: every download checked against the lock's hashes. Last,
# setuptools writes liaison.egg-info at the root: the package metadata `flet build` packages for
# the phone, where the app reads its version from it (app/version.py).
$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	awk '/^pip==/ { on = 1; print; next } on && /^ +--hash=/ { print; next } { on = 0 }' \
		$(DEV_LOCK) > $(VENV)/pip.lock
	test ! -s $(VENV)/pip.lock || $(BIN)/python -m pip install -q --require-hashes -r $(VENV)/pip.lock
	$(BIN)/python -m pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c 'from setuptools import setup; setup()' -q egg_info
	touch $(STAMP)

install: $(STAMP)

# Rewrites the lock files from pyproject.toml with uv (pinned in the dev extra).
lock: install
	$(UV_COMPILE) --extra server --extra dev -o $(DEV_LOCK)

# Offline: the lock files pin what pyproject.toml asks for.
lock-check: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_lock.py

# Known vulnerabilities in the locked packages (pip-audit, advisories from PyPI; needs network).
audit: install
	$(BIN)/pip-audit --disable-pip --require-hashes --progress-spinner off --desc on \
		$(AUDIT_FLAGS) $(addprefix -r ,$(LOCKS))

# Starts the server on SQLite with demo data (port 8000) and the app at http://127.0.0.1:8550.
run: install
	$(BIN)/python -m tools.run

LINTED := app sync server tests benchmarks tools main.py

# ruff check (complexity C901 <= 12 included) and ruff format --check.
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: install
	$(BIN)/mypy sync server app tools main.py

# `flet build apk/ipa`'s Python packaging without Flutter: the phone's dependencies resolved for
# Android and iOS (PyPI + Flet's mobile index), the packaged app imported and the device tests
# run on CPython 3.12 and 3.13 with the phone's package versions (tools/phone_check.py).
phone-check: install
	$(BIN)/python -m tools.phone_check

test: lock-check lint typecheck phone-check
	$(BIN)/python -m pytest

# Phone builds: `make apk`, `make aab`, `make ipa` (they need the Flutter SDK and the Android SDK
# or Xcode; see README, "Phones"). FLET_BUILD_FLAGS adds options, e.g. --build-number 7.
# Through make, so that liaison.egg-info (the version the app shows) is current.
FLET_BUILD_FLAGS ?=
apk aab ipa: install
	$(BIN)/flet build $@ $(FLET_BUILD_FLAGS)

# Refreshes docs/screenshots/ (demo data only) from the browser tests.
screenshots: install
	LIAISON_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/e2e

bench: install
	$(BIN)/python -m benchmarks.store --records 10000
	$(BIN)/python -m benchmarks.photos
	$(BIN)/python -m benchmarks.sync
	$(BIN)/python -m benchmarks.server --devices 200
	$(BIN)/python -m benchmarks.web
	$(BIN)/python -m benchmarks.scale

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
