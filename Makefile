# sqltrack: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Spark binds to loopback only; its Python workers use this venv's interpreter.
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)
PG_TEST_DSN ?= postgresql://root@127.0.0.1:5432/test

.PHONY: install install-test demo test lint pg-up browser jdbc bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[plots]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,plots]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Start the local PostgreSQL cluster if it is not answering (Debian's pg_ctlcluster).
pg-up:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n1) main start; \
	fi
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

# PostgreSQL's JDBC driver (Debian package), so a test can read stored datasets with Spark's
# own JDBC reader; benchmark and test only, never a runtime dependency.
jdbc:
	@test -f /usr/share/java/postgresql.jar || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpostgresql-jdbc-java)

# Headless Chromium for the report's browser test (Debian package `chromium`).
browser:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

demo: install
	$(BIN)/sqltrack demo

# CI runs exactly this: lint, then the whole suite against DuckDB, PostgreSQL and local Spark.
test: install-test pg-up browser jdbc lint
	SQLTRACK_TEST_PG_DSN=$(PG_TEST_DSN) $(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install-test pg-up
	$(BIN)/pip install -q -e '.[test,plots,bench]'
	@# Spark's JDBC writer/reader are the data source benchmark's anchors (benchmark-only).
	@test -f /usr/share/java/postgresql.jar || (apt-get update -q && apt-get install -y -q libpostgresql-jdbc-java)
	SQLTRACK_TEST_PG_DSN=$(PG_TEST_DSN) $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build sqltrack-report
