# creatorpass — every target bootstraps .venv on first use; a fresh machine needs Python 3.11 and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= all
BENCH ?=
PYTEST_ARGS ?=

.PHONY: help venv system up reset test lint typecheck boundaries proto proto-check bench compose-check clean

help:
	@echo "make up      run the embedded appliance (devnet chain, Stripe sandbox, SQLite, built-in model, CPU)"
	@echo "             UP_ARGS='--port gateway=8081' moves a port, UP_ARGS=--free-ports picks free ones"
	@echo "make reset   delete the appliance's state under var/ (devnet chain, keys, ledger, images)"
	@echo "make test    lint, type-check, boundaries, stub freshness, compose check, the whole test suite"
	@echo "make bench   every benchmark under tests/bench (BENCH=name runs one)"
	@echo "make proto   regenerate gRPC stubs in common/rpc from proto/"
	@echo "make lint    ruff + mypy + import boundaries"

$(STAMP): pyproject.toml constraints.txt
	@echo "make: installing creatorpass and its dependencies into $(VENV) (the first run takes a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $(STAMP)

venv: $(STAMP)

system:
	@bash tools/setup-system.sh

proto: $(STAMP)
	$(PY) tools/gen_proto.py

proto-check: $(STAMP)
	$(PY) tools/check_proto.py

lint: $(STAMP) boundaries typecheck
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy common signer gateway creatorpass
	$(VENV)/bin/mypy devnet indexer inference

boundaries: $(STAMP)
	$(VENV)/bin/lint-imports

compose-check: $(STAMP)
	$(PY) tools/check_compose.py
	$(PY) tools/check_k8s.py

test: $(STAMP) system lint proto-check compose-check
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

bench: $(STAMP) system
	$(PY) -m tests.bench.harness $(BENCH)

up: $(STAMP)
	$(PY) -m creatorpass up $(UP_ARGS)

reset: $(STAMP)
	$(PY) -m creatorpass up --reset

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var bench-results.jsonl
