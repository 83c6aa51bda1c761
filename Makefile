# marketcache — the front door. `make` alone prints the help.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto' | sort)
CACHE_REPLICAS ?= 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help run run-observed test test-fast lint gen gen-check bench bench-quick bench-check soak deps clean

help: ## Print this help
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the project with its dev dependencies

deps: ## Install the Debian packages the tests and benchmarks use (prometheus/promtool, redis-server, chromium, PostgreSQL 15 server tools, perf)
	@if ! command -v promtool >/dev/null || ! command -v redis-server >/dev/null || ! command -v chromium >/dev/null \
	  || ! test -x /usr/lib/postgresql/15/bin/pg_basebackup || ! command -v runuser >/dev/null \
	  || ! command -v perf >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus redis-server chromium \
	    postgresql-15 postgresql-client-15 util-linux linux-perf >/dev/null; \
	fi

run: $(STAMP) ## Start the whole system on embedded defaults (SQLite, synthetic data)
	$(PY) -m services.launcher --cache-replicas $(CACHE_REPLICAS)

run-observed: $(STAMP) deps ## `make run` plus a local Prometheus scraping every process
	$(PY) -m services.launcher --cache-replicas $(CACHE_REPLICAS) --prometheus

gen: $(STAMP) ## Regenerate gen/ from protos/ (python, grpc and .pyi stubs)
	rm -rf gen/marketcache
	mkdir -p gen
	$(PY) -m grpc_tools.protoc -I protos -I "$$($(PY) -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')" \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	  --python_out=gen --pyi_out=gen --grpc_python_out=gen --mypy_grpc_out=gen \
	  $(PROTOS)
	touch gen/marketcache/__init__.py gen/marketcache/v1/__init__.py

gen-check: gen ## Fail when the committed gen/ differs from a fresh `make gen`
	@git diff --exit-code --stat -- gen/ || { echo "gen/ is stale: run 'make gen' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "gen/ has untracked files: run 'make gen' and commit"; exit 1; }

lint: $(STAMP) ## ruff, mypy --strict (generated code excluded), the import-linter contracts
	$(VENV)/bin/ruff check services tests bench harness
	$(VENV)/bin/ruff format --check services tests bench harness
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP) deps lint gen-check ## Lint, check gen/ is fresh, then run the whole test suite
	$(PY) -m pytest

test-fast: $(STAMP) ## Run the tests not marked slow
	$(PY) -m pytest -m "not slow"

bench: $(STAMP) deps ## Run the benchmarks; writes BENCHMARKS.md and bench/results.png
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: $(STAMP) deps ## The benchmarks in quick mode (under 2 minutes)
	$(PY) -m bench --quick

bench-check: $(STAMP) ## Cost-per-call ratios to the floor, quickly (< 3 min); fails if one is >20% worse than BENCHMARKS.md's
	$(PY) -m bench.check

soak: $(STAMP) ## A long soak run (SOAK_SECONDS, default 600)
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(PY) -m pytest tests/reliability/test_soak.py -p no:cacheprovider

clean: ## Remove .venv, var/ and caches
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
