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

.PHONY: help run run-observed test test-fast test-stress lint gen gen-check bench bench-quick bench-check nemesis takeover soak deps image release-protos clean

help: ## Print this help
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# npm packages: buf (package.json) and the Node interop client's (tests/interop/node), from
# their lockfiles.
NPM_STAMP := node_modules/.installed
BUF := node_modules/.bin/buf
NODE_CLIENT := tests/interop/node/node_modules/.installed
# google/api/*.proto for buf, from the googleapis-common-protos that `make gen` compiles against.
BUF_DEPS := build/buf-deps/google/api/annotations.proto

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the project with its dev dependencies

$(NPM_STAMP): package.json package-lock.json | deps
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(NODE_CLIENT): tests/interop/node/package.json tests/interop/node/package-lock.json | deps
	npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error
	@touch $@

$(BUF_DEPS): $(STAMP)
	mkdir -p $(@D)
	cp "$$($(PY) -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parent)')"/{annotations,http}.proto $(@D)/

deps: ## Install the Debian packages the tests use (prometheus/promtool, redis-server, chromium, PostgreSQL 15 server tools, libfaketime, podman, runc, mmdebstrap, nodejs/npm, perf)
	@if ! command -v promtool >/dev/null || ! command -v redis-server >/dev/null || ! command -v chromium >/dev/null \
	  || ! test -x /usr/lib/postgresql/15/bin/pg_basebackup || ! command -v runuser >/dev/null \
	  || ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v faketime >/dev/null \
	  || ! command -v perf >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus redis-server chromium \
	    postgresql-15 postgresql-client-15 util-linux faketime podman runc mmdebstrap linux-perf >/dev/null; \
	fi
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
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

lint: $(STAMP) $(NPM_STAMP) $(BUF_DEPS) ## ruff, mypy --strict, import-linter contracts, buf lint and buf breaking (protos/)
	$(VENV)/bin/ruff check services tests bench harness
	$(VENV)/bin/ruff format --check services tests bench harness
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(BUF) lint
	$(BUF) breaking protos --against protos/released.binpb

release-protos: $(NPM_STAMP) $(BUF_DEPS) ## At a release: make protos/ the API that `buf breaking` compares against
	$(BUF) build protos -o protos/released.binpb

test: $(STAMP) deps lint gen-check $(NODE_CLIENT) ## Lint, check gen/ is fresh, then run the whole test suite
	$(PY) -m pytest

test-fast: $(STAMP) ## Run the tests not marked slow
	$(PY) -m pytest -m "not slow"

test-stress: $(STAMP) deps ## Run STRESS_TESTS (default: the known-flaky set) STRESS_COUNT times (20) beside two busy processes; pass rate and slowest run per test
	$(PY) -m harness.stress --count $${STRESS_COUNT:-20} $(STRESS_TESTS)

bench: $(STAMP) deps ## Run the benchmarks; writes BENCHMARKS.md and bench/results.png
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: $(STAMP) deps ## The benchmarks in quick mode (under 2 minutes)
	$(PY) -m bench --quick

nemesis: $(STAMP) ## Random faults against three caches on SQLite and PostgreSQL (NEMESIS_SECONDS, default 600; NEMESIS_FAULTS=a,b for only those classes); writes its table into RELIABILITY.md
	$(PY) -m harness.nemesis --seconds $${NEMESIS_SECONDS:-600} --reliability RELIABILITY.md --json var/nemesis.json

takeover: $(STAMP) ## kill -9 of an owner, TAKEOVER_RUNS times (20) per database and way of seeing the death: time until its every prefix is served again; writes its table into RELIABILITY.md
	$(PY) -m harness.takeover --runs $${TAKEOVER_RUNS:-20} --prefixes $${TAKEOVER_PREFIXES:-48} --reliability RELIABILITY.md --json var/takeover.json

bench-check: $(STAMP) ## Cost-per-call ratios to the floor, quickly (< 3 min); fails if one is >20% worse than BENCHMARKS.md's
	$(PY) -m bench.check

soak: $(STAMP) ## A long soak run (SOAK_SECONDS, default 600)
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(PY) -m pytest tests/reliability/test_soak.py -p no:cacheprovider

image: $(STAMP) deps ## Build deploy/Dockerfile with podman as marketcache:<version> (base from mmdebstrap; settings in .image/)
	$(PY) -m harness.image --state-dir .image

clean: ## Remove .venv, var/ and caches
	rm -rf $(VENV) var .image node_modules tests/interop/node/node_modules build/buf-deps .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
