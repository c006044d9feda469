# nightscore: the commands a developer runs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

.DEFAULT_GOAL := help
.PHONY: help venv requirements lint precommit format test test-fast test-distributed test-faults demo stop bench-dag-imports bench-scoring bench-drift bench-executors bench-preload bench-alerts dictionary

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv==0.13.8

# Both locks, then both packages editable: nightscore (the image's) and nightscore-dev
# (the local stack, the demo, the mail sink), whose dependencies the locks pin.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml include/dev/pyproject.toml | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet -r requirements.txt -r requirements-dev.txt
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e . -e include/dev
	touch $@

venv: $(VENV)/.installed ## create .venv: both locks, nightscore and nightscore-dev (editable)

# pyproject.toml is the source: [project.dependencies] -> requirements.txt (the image's),
# [dependency-groups] dev -> requirements-dev.txt, constrained to the runtime pins. Both
# for Linux and macOS ([tool.uv] environments); existing pins are kept unless they must move.
UV_COMPILE := $(UV) pip compile --universal --python-version 3.11 --quiet
requirements: | $(BIN)/python ## regenerate requirements.txt and requirements-dev.txt from pyproject.toml
	$(UV_COMPILE) pyproject.toml -o requirements.txt
	$(UV_COMPILE) --group pyproject.toml:dev -c requirements.txt -o requirements-dev.txt

lint: venv ## ruff, import contracts, hadolint on the Dockerfile, compose and GitLab CI files against their schemas
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.gitlab-ci .gitlab-ci.yml

precommit: venv ## every pre-commit hook on every tracked file
	$(BIN)/pre-commit run --all-files

format: venv ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# No Postgres answering at 127.0.0.1:5432 (and no NIGHTSCORE_TEST_ADMIN_URL): the session
# starts an embedded one of its own, as `make demo` does (tests/conftest.py).
test: venv ## the whole suite, against a real Postgres (the local one, or an embedded one)
	$(BIN)/python -m pytest

test-fast: venv ## the suite without the tests marked slow (about 2-2.5 min on an idle 2-core machine)
	$(BIN)/python -m pytest -m "not slow"

# Needs root: network namespaces give the Celery workers hosts of their own. Its last
# line is JSON; `make test` runs it too (tests/distributed).
test-distributed: venv ## two nights on Celery workers on hosts of their own, a worker killed, every link fetched
	$(BIN)/python -m nightscore_dev.cluster

# Needs root: it mounts a tmpfs for the reports and remounts it read-only. Its last line
# is JSON; `make test` runs it too (tests/faults).
test-faults: venv ## six faults injected into the real services while real DAG runs need them
	$(BIN)/python -m nightscore_dev.faults

demo: venv ## start the platform and replay a window of days through the scheduler (EXECUTOR=celery: Redis and two Celery workers)
	$(BIN)/nightscore-dev demo $(if $(EXECUTOR),--executor $(EXECUTOR))

dictionary: venv ## regenerate docs/data-dictionary.md from a freshly migrated warehouse (a throwaway database)
	$(BIN)/python -m nightscore_dev.dictionary docs/data-dictionary.md

stop: ## stop what `make demo` started
	@if [ -x $(BIN)/nightscore-dev ]; then $(BIN)/nightscore-dev stop; else echo "nothing to stop"; fi

bench-dag-imports: venv ## time each DAG file's import (what the DAG processor pays)
	$(BIN)/python benchmarks/dag_import_times.py

bench-scoring: venv ## score N synthetic flights end to end vs naive and floor (ARGS="--rows 5000000 --skip-naive")
	$(BIN)/python benchmarks/scoring.py $(ARGS)

bench-drift: venv ## the evening drift check end to end vs Evidently's full report, 1M rows, 10M streamed (ARGS="--rows 200000 --stream-rows 0")
	$(BIN)/python benchmarks/drift.py $(ARGS)

bench-alerts: venv ## replay 2013 night by night: do drift warnings come before bad nights? (cached in .cache/bench-alerts)
	$(BIN)/python benchmarks/alerts.py $(ARGS)

bench-executors: venv ## two nights on LocalExecutor vs Celery x2, a 1M-flight night with K=1,2,4 (root)
	$(BIN)/python benchmarks/executors.py $(ARGS)

bench-preload: venv ## the demo's nights through the scheduler without and with the tasks' libraries preloaded
	$(BIN)/python benchmarks/preload.py $(ARGS)

# --- make ci-local: the pipeline's lint and test jobs, on this machine ---------------------
# gitlab-ci-local runs a job in this machine's shell only when the job names no image, so
# it gets a copy of .gitlab-ci.yml without `image:` and `services:`: the same scripts,
# variables and caches, with this machine's Python 3.11 and Postgres (PG_HOST=127.0.0.1).
# JOBS picks jobs: `make ci-local JOBS=lint`. gitlab-ci-local 4.75 crashes under Node 20.
CI_LOCAL_VERSION := 4.56.2
CI_LOCAL_PREFIX := .ci/node
CI_LOCAL := $(CI_LOCAL_PREFIX)/node_modules/.bin/gitlab-ci-local
CI_LOCAL_FILE := .gitlab-ci-local/shell.gitlab-ci.yml
JOBS ?= lint test
.PHONY: ci-local

$(CI_LOCAL_PREFIX)/.installed-$(CI_LOCAL_VERSION):
	npm install --prefix $(CI_LOCAL_PREFIX) --save-exact --no-audit --no-fund gitlab-ci-local@$(CI_LOCAL_VERSION)
	touch $@

ci-local: venv $(CI_LOCAL_PREFIX)/.installed-$(CI_LOCAL_VERSION) ## the pipeline's lint and test jobs here, with gitlab-ci-local (JOBS=lint: one)
	@command -v rsync >/dev/null || { echo "gitlab-ci-local needs rsync: apt-get install rsync" >&2; exit 1; }
	@mkdir -p $(dir $(CI_LOCAL_FILE))
	$(BIN)/python -c 'import sys, yaml; ci = yaml.safe_load(open(sys.argv[1])); [job.pop(key, None) for job in ci.values() if isinstance(job, dict) for key in ("image", "services")]; yaml.safe_dump(ci, open(sys.argv[2], "w"), sort_keys=False)' .gitlab-ci.yml $(CI_LOCAL_FILE)
	$(CI_LOCAL) --file $(CI_LOCAL_FILE) --shell-executor-no-image --variable PG_HOST=127.0.0.1 $(JOBS)

.PHONY: golden
golden: venv ## rewrite the checked-in rendering of the feature query (sql/features/features.golden.sql)
	$(BIN)/python -c 'from nightscore.features import write_golden; print(write_golden())'
