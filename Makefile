# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint unit install clean bench-ingest bench-ledger

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## make demo: simulators, a broker, the agent and the collector; API on http://127.0.0.1:8080
demo: $(VENV)/.installed
	$(BIN)/metertrace demo

## make test: lint, type check and the whole test suite (unit, integration, end to end)
test: $(VENV)/.installed lint
	@scripts/ensure-mosquitto
	@scripts/ensure-postgres
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make unit: the fast, pure tests only (no broker needed)
unit: $(VENV)/.installed
	$(BIN)/pytest -m unit

## make bench-ingest: MQTT -> committed row on SQLite and PostgreSQL vs a plain subscriber
bench-ingest: $(VENV)/.installed
	@scripts/ensure-mosquitto
	@scripts/ensure-postgres
	$(BIN)/python -m benchmarks.bench_ingest

## make bench-ledger: a year of 50 meters stored, every batch figure from the database (~1 h)
bench-ledger: $(VENV)/.installed
	@scripts/ensure-postgres
	$(BIN)/python -m benchmarks.bench_ledger

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
