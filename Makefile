# The two commands: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROTOS := protos/credit/v1/node.proto protos/credit/v1/gateway.proto

.PHONY: install run test lint format protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Seed three regional nodes on SQLite (first run only) and run them.
run: install
	$(BIN)/jjj demo

## The whole test suite (PostgreSQL tests run when a server answers on 127.0.0.1:5432).
test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Regenerate the committed stubs from protos/ (a test fails when they are stale).
protos: install
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

## Node and gateway benchmarks (1 M records per node; several minutes); figures go to docs/BENCHMARKS.md.
## Capacity is measured with wrk when it is installed (apt-get install wrk), else with a Python generator.
bench: install
	@command -v wrk >/dev/null || echo "wrk is not installed: capacity will be measured with the Python generator"
	$(BIN)/python -m bench.node --write docs/BENCHMARKS.md
	$(BIN)/python -m bench.gateway --write docs/BENCHMARKS.md
	$(BIN)/python -m bench.batch --write docs/BENCHMARKS.md
	$(BIN)/python -m bench.replication --write docs/BENCHMARKS.md
	$(BIN)/python -m bench.ingest --write docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
