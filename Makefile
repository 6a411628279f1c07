# The two commands a newcomer needs are `make demo` and `make test`; both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-host test-device test-e2e demo lint typecheck bench drill docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

test-host: setup
	$(BIN)/pytest -m host $(PYTEST_ARGS)

test-device: setup
	$(BIN)/pytest -m device $(PYTEST_ARGS)

test-e2e: setup
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m authprobe.demo

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
	$(BIN)/python -m authprobe.reference_page > docs/reference.md

clean:
	rm -rf $(VENV) .authprobe build *.egg-info
