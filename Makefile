# Lakewatch: `make demo` and `make test` set everything up from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JARS := .cache/jars/.resolved
export PATH := $(CURDIR)/$(BIN):$(PATH)
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(BIN)/python
DEMO_START ?= 2026-03-02

.PHONY: setup test demo bench clean

setup: $(INSTALLED) $(JARS)

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Delta jars: resolved once from Maven Central by Spark's own resolver; every session then runs offline.
$(JARS): $(INSTALLED)
	$(BIN)/lakewatch setup-jars
	touch $@

test: setup
	$(BIN)/python -m pytest -q --timeout=900

demo: setup
	rm -rf lakehouse
	$(BIN)/lakewatch generate --dataset demo_metrics --start $(DEMO_START) --days 14 --entities 8 --seed 42
	$(BIN)/lakewatch import-nab
	$(BIN)/lakewatch validate --dataset demo_metrics --start $(DEMO_START) --end 2026-03-16
	$(BIN)/lakewatch validate --dataset nab --start 2013-07-01 --end 2015-10-01
	$(BIN)/lakewatch summary
	@echo
	@echo "Query the tables:  $(BIN)/lakewatch sql \"SELECT dataset, reason, count(*) AS n FROM quarantine GROUP BY 1, 2 ORDER BY n DESC\""
	@echo "Without Spark:     $(BIN)/python -c \"from deltalake import DeltaTable; print(DeltaTable('lakehouse/quarantine').to_pandas().head())\""

bench: setup
	$(BIN)/python -m lakewatch.bench

clean:
	rm -rf $(VENV) .cache lakehouse spark-warehouse metastore_db
