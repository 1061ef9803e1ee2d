# digest — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Every version `make demo` and `make test` install, with hashes: a fresh clone tests exactly
# what was tested. `make lock` refreshes it from pyproject's ranges.
LOCK   := requirements.lock
# pytest-xdist: one worker per core.
PYTEST := -m pytest -q -n auto

.PHONY: demo test test-newest lint format check clean bench bench-smoke lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/digest demo

test: $(VENV)/.installed
	$(BIN)/python $(PYTEST)

# The suite against the newest versions pyproject's ranges allow (no lock), in its own venv:
# what a pipx user gets today. CI runs it beside `make test`.
NEWEST := .venv-newest
test-newest:
	rm -rf $(NEWEST)
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install -q --upgrade pip
	$(NEWEST)/bin/python -m pip install -q --upgrade -e '.[dev]'
	$(NEWEST)/bin/python -m pip freeze --exclude-editable > $(NEWEST)/versions.txt
	$(NEWEST)/bin/python $(PYTEST)

lock: | $(BIN)/python
	$(BIN)/python -m pip install -q pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --extra dev --all-build-deps --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links --upgrade --output-file $(LOCK) pyproject.toml

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy digest tests

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test

# The full benchmark: writes bench/RESULTS.md (about 7 minutes on 2 cores); see bench/README.md.
bench: $(VENV)/.installed
	$(BIN)/python -m bench --size full

# Seconds: the same phases at a tiny size (what tests/test_bench.py runs).
bench-smoke: $(VENV)/.installed
	$(BIN)/python -m bench --size smoke

clean:
	rm -rf $(VENV) $(NEWEST) out build dist .pytest_cache .mypy_cache .ruff_cache
