# TESK developer entry points. `make run` serves TES on 127.0.0.1:8080; `make test` runs every check.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench clean k8s-up k8s-down k8s-serve

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	scripts/runtime-setup.sh
	$(BIN)/tesk serve

lint: install
	$(BIN)/ruff check tesk tests benchmarks
	$(BIN)/ruff format --check tesk tests benchmarks

typecheck: install
	$(BIN)/mypy --strict tesk

# System packages and servers the tests use (bubblewrap, podman, PostgreSQL, the Kubernetes test
# cluster), then every check.
test: install
	scripts/test-setup.sh
	$(MAKE) --no-print-directory lint typecheck
	$(K8S) up
	. ./.cache/test-env.sh && $(BIN)/pytest -q --cov --cov-report=term:skip-covered

unit: install
	$(BIN)/pytest -q tests/unit

# `make bench` runs every benchmark; `make bench BENCH="create_throughput list_tasks"` some.
bench: install
	scripts/test-setup.sh --bench
	. ./.cache/test-env.sh && $(BIN)/python -m benchmarks $(BENCH)

# A real single-node Kubernetes (etcd, control plane, kubelet, containerd) built from the Go module
# proxy, in a network namespace of its own: docs/testing-kubernetes.md. Needs root.
K8S := $(BIN)/python -m tests.k8s.cluster
PORT ?= 8080

k8s-up: install
	$(K8S) up

k8s-down: install
	$(K8S) down

# TES on 127.0.0.1:$(PORT) with the Kubernetes backend: the chart installed with helm in the cluster.
k8s-serve: k8s-up
	scripts/fetch-helm.sh >/dev/null
	$(K8S) serve --port $(PORT)

clean:
	rm -rf $(VENV) .cache .tesk .pytest_cache .mypy_cache .ruff_cache
