# credentials-consumer — every target does its own set-up on a fresh machine.
#   make run         local Kafka + registry, sample events published the LMS way, worker in dry-run
#   make test        unit + integration tests on a real Kafka broker and schema registry, a real
#                    Prometheus (promtool checks the alert rules, the dashboard's queries run on
#                    it), and the deploy checks (lock, real helm, Kubernetes schemas)
#   make lint        ruff, mypy --strict, import contracts
#   make bench       the benchmark, side by side on the local stack (docs/benchmarks.md);
#                    BENCH_ARGS="--events 20000 --memory-events 0 --no-profile" is a quick run
#   make chaos       the fault-injection soak and its audit (CHAOS_EVENTS=50000, CHAOS_ARGS=...)
#   make lock        recompile requirements/*.txt from pyproject.toml (LOCK_ARGS=--upgrade to bump)
#   make image       build the container image with podman (dev/image)
#   make image-test  run the image read-only as non-root against the local broker

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
PYTEST_ARGS ?=
LOCK_ARGS ?=
CHAOS_EVENTS ?= 50000
CHAOS_ARGS ?=
BENCH_ARGS ?=

.PHONY: install lock helm prometheus test unit integration run lint format bench chaos dashboard \
        image image-test stack-start stack-stop clean

install: $(STAMP)

# Exactly the locked versions (hash-checked), then the project itself without dependencies.
$(STAMP): pyproject.toml requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements/dev.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $@

# Prometheus and promtool, from Debian's package, unpacked under .local/prometheus (cached).
prometheus:
	dev/prometheus fetch

lock: install
	dev/lock $(LOCK_ARGS)

helm:
	dev/helm version --short

test: install prometheus helm
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

# Not part of `make test`: about 25 minutes at the default size (bench/run.py says what it does).
bench: install
	dev/with-stack $(BIN)/python -m bench.run $(BENCH_ARGS)

# A broker and a registry of its own on free ports (it stops and restarts them), the worker as
# processes, every fault of issue 14; prints the audit, exits 1 if anything is lost or wrong.
chaos: install
	$(BIN)/python -m tests.chaos run --events $(CHAOS_EVENTS) $(CHAOS_ARGS)

image:
	dev/image build

image-test: install image
	dev/with-stack dev/image test

stack-start:
	dev/stack start

stack-stop:
	dev/stack stop

clean: stack-stop
	rm -rf .local $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
