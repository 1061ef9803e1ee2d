# digest — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint format check clean bench bench-smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/digest demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy digest tests

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test

# The full benchmark: writes bench/RESULTS.md (about 7 minutes on 2 cores); see bench/README.md.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench --size full

# Seconds: the same phases at a tiny size (what tests/test_bench.py runs).
bench-smoke: $(VENV)/.installed-dev
	$(BIN)/python -m bench --size smoke

clean:
	rm -rf $(VENV) out build dist .pytest_cache .mypy_cache .ruff_cache
