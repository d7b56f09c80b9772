# credentials-consumer — every target does its own set-up on a fresh machine.
#   make run    local Kafka + registry, sample events published the LMS way, worker in dry-run
#   make test   unit + integration tests on a real Kafka broker and schema registry (and a real
#               Prometheus: promtool checks the alert rules, the dashboard's queries run on it)
#   make lint   ruff, mypy --strict, import contracts
#   make bench  the throughput benchmark

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install prometheus test unit integration run lint format bench dashboard stack-start stack-stop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

# Prometheus and promtool, from Debian's package, unpacked under .local/prometheus (cached).
prometheus:
	dev/prometheus fetch

test: install prometheus
	dev/with-stack $(BIN)/pytest $(PYTEST_ARGS)

unit: install prometheus
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: install prometheus
	dev/with-stack $(BIN)/pytest -m integration $(PYTEST_ARGS)

run: install
	dev/run-local

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the Grafana dashboard from dev/dashboard.py (a test checks the file is current).
dashboard: install
	$(BIN)/python -m dev.dashboard > helm/credentials-consumer/files/grafana-dashboard.json

bench: install
	dev/with-stack $(BIN)/python -m bench.run

stack-start:
	dev/stack start

stack-stop:
	dev/stack stop

clean: stack-stop
	rm -rf .local $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
