# The two commands a newcomer needs are `make demo` and `make test`; both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

# Mosquitto lives in /usr/sbin, which a non-login shell may not have on PATH.
export PATH := $(PATH):/usr/sbin

.PHONY: setup system-deps test test-host test-device test-e2e test-install fuzz demo lint typecheck bench drill docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Test peers pip cannot install (Mosquitto, openssl, Chromium, PostgreSQL): installed when this user may.
system-deps:
	@scripts/install-system-deps

test: setup system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# The run store's tests (tests/host/test_store*) start a PostgreSQL server of their own.
test-host: setup system-deps
	$(BIN)/pytest -m host $(PYTEST_ARGS)

test-device: setup system-deps
	$(BIN)/pytest -m device $(PYTEST_ARGS)

test-e2e: setup system-deps
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

# The sdist and wheel built, installed into a fresh venv and used from an empty folder (about a minute).
test-install: setup
	$(BIN)/pytest -m install $(PYTEST_ARGS)

# The property-based tests with the long profile (minutes): hostile input for every parser.
fuzz: setup system-deps
	$(BIN)/pytest -m fuzz --hypothesis-profile=fuzz --timeout=1800 $(PYTEST_ARGS)

demo: setup
	$(BIN)/authprobe demo

lint: setup
	$(BIN)/ruff check firmware host tests bench

typecheck: setup
	$(BIN)/pyright -p pyrightconfig.json

# Every capability keeps a benchmark script in bench/; each prints its own figures.
bench: setup
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

drill: setup
	$(BIN)/authprobe drill

# The diagnostic reference page is generated from the catalogue.
docs: setup
	$(BIN)/python -m authprobe.report.reference_page > docs/reference.md

clean:
	rm -rf $(VENV) .authprobe build *.egg-info
