# retail-mesh: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
BUF := $(TOOLS)/node_modules/.bin/buf
BUF_VERSION := 1.75.0

.PHONY: install gen gen-check run test test-unit test-integration test-e2e lint fmt bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

gen: install
	$(BIN)/python -m tools.protogen

gen-check: install
	$(BIN)/python -m tools.protogen --check

run: gen
	$(BIN)/retail-mesh up

test: gen
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest tests/unit tests/contract $(PYTEST_ARGS)

$(BUF):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --silent --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION) >/dev/null

# buf breaking compares protos/ with a baseline tools/protogen.py picks (choose_baseline): on a
# branch, its merge-base with main (or origin/main); on main, HEAD~1, or HEAD while protos/ has
# uncommitted changes. BUF_AGAINST=<git revision> overrides it. A shallow clone without the parent
# commit, or a one-commit repository, skips the check and says so.
lint: install $(BUF)
	$(BIN)/ruff check .
	$(BIN)/python -m tools.protogen --lint --buf $(BUF)

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark's extra (Celery, redis-py) and Debian's redis-server for the Celery peer.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: gen $(BENCH_STAMP)
	@command -v redis-server >/dev/null || apt-get install -y redis-server || { apt-get update && apt-get install -y redis-server; }
	$(BIN)/python -m bench $(if $(QUICK),--quick,) $(BENCH_ARGS)

clean:
	rm -rf .mesh build
