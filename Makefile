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

.PHONY: setup test demo airflow airflow-password bench bench-windows bench-quality bench-signals clean

setup: $(INSTALLED) $(JARS)

# uv (pinned in constraints.txt) installs the same pinned set as pip would, from its cache in a fraction of the time.
# Each fresh install builds pyspark's sdist into a new cache revision (~1 GiB): the prune keeps only reachable ones.
$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev]'
	$(BIN)/uv cache prune --quiet
	rm -rf lib/*.egg-info  # setuptools leaves one beside the code: Airflow would find the plugin twice
	touch $@

# Delta jars: resolved once from Maven Central by Spark's own resolver; every session then runs offline.
$(JARS): $(INSTALLED)
	$(BIN)/lakewatch setup-jars
	touch $@

# The browser of the UI test: Debian's Chromium, driven by Playwright at its system path (no browser download).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
		|| (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)

test: setup $(CHROMIUM)
	$(BIN)/python -m pytest -q --timeout=900 --durations=40

# Airflow: its own home and SQLite database under .cache/, the project's DAGs, a local Spark connection.
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/.cache/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags LAKEWATCH_HOME=$(CURDIR) \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	AIRFLOW_CONN_SPARK_LOCAL='{"conn_type":"spark","host":"local[2]"}'
DEMO_LOGS := .cache/demo-logs
comma := ,
# $(call dag_test,DAG,LOGICAL_DATE,CONF): one DAG run with `airflow dags test`, its summary printed, its log kept
define dag_test
	$(AIRFLOW_ENV) $(BIN)/airflow dags test $(1) $(2) --conf '$(3)' > $(DEMO_LOGS)/$(1)-$(2).log 2>&1 \
		|| (tail -60 $(DEMO_LOGS)/$(1)-$(2).log; exit 1)
	@echo "$(1) $(2): success (log: $(DEMO_LOGS)/$(1)-$(2).log)"
	@grep -E "^ *(dataset|interval|model|rows_[a-z]+|events|drift_alert|drift_warn|report|view|challenge|promote|status): " $(DEMO_LOGS)/$(1)-$(2).log \
		| sed 's/^/    /' || true
	@grep -q "DRIFT ALERT" $(DEMO_LOGS)/$(1)-$(2).log && echo "    drift_gate: RED (drift alert)" || true
endef
LW := $(BIN)/lakewatch

demo: setup
	rm -rf lakehouse .cache/airflow $(DEMO_LOGS) && mkdir -p $(DEMO_LOGS)
	@echo "== 1. data: 15 days x 8 hosts of operations metrics (anomalies injected; mem_pct shifts on 2026-03-16), and NAB"
	$(LW) generate --dataset demo_metrics --start $(DEMO_START) --days 15 --entities 8 --seed 42 --drift-date 2026-03-16
	$(LW) import-nab
	$(LW) validate --dataset nab --start 2013-07-01 --end 2015-10-01
	@echo "== 2. Airflow (SQLite, no scheduler): lakewatch_train on week 1, lakewatch_score on week 2, then on the drift day"
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate > $(DEMO_LOGS)/airflow-db.log 2>&1
	$(call dag_test,lakewatch_train,2026-03-09,{"dataset": "demo_metrics"$(comma) "start": "2026-03-02"$(comma) "end": "2026-03-09"})
	$(call dag_test,lakewatch_score,2026-03-16,{"dataset": "demo_metrics"$(comma) "start": "2026-03-09"$(comma) "end": "2026-03-16"})
	$(call dag_test,lakewatch_score,2026-03-17,{"dataset": "demo_metrics"$(comma) "start": "2026-03-16"$(comma) "end": "2026-03-17"})
	@echo "== 3. what was found in week 2: the top events and why, and the evaluation against the injected labels"
	$(LW) sql "SELECT entity, start_ts, end_ts, n_points, severity, round(peak_score, 2) AS peak, transform(top_features, t -> concat(t.feature, ' ', cast(round(t.share * 100) AS INT), '%')) AS why FROM events WHERE logical_date < '2026-03-16' ORDER BY peak_score DESC" --limit 8
	$(LW) sql "SELECT metric, round(value, 4) AS value FROM evaluation WHERE dataset = 'demo_metrics' AND logical_date = '2026-03-09' ORDER BY metric"
	@echo "== 4. drift on the day mem_pct shifted for every host (the lakewatch_score run of that day has a red drift_gate)"
	$(LW) sql "SELECT feature, metric, round(value, 3) AS value, threshold AS alert_at, status FROM drift WHERE logical_date = '2026-03-16' AND status = 'alert' ORDER BY feature, metric"
	$(LW) summary --limit 12
	@echo
	@echo "Reports:           ls lakehouse/reports/*/"
	@echo "Query the tables:  $(LW) sql \"SELECT dataset, reason, count(*) AS n FROM quarantine GROUP BY 1, 2 ORDER BY n DESC\""
	@echo "Without Spark:     $(BIN)/python -c \"from deltalake import DeltaTable; print(DeltaTable('lakehouse/events').to_pandas().head())\""
	@echo "Watch in the UI:   make airflow"

# The Airflow UI on http://127.0.0.1:8080 (SQLite, LocalExecutor). The admin password is generated once into
# $(AIRFLOW_PASSWORDS), readable by its owner only (0600); it is not printed.
AIRFLOW_PASSWORDS ?= $(CURDIR)/.cache/airflow/passwords.json
airflow-password:
	mkdir -p $(dir $(AIRFLOW_PASSWORDS))
	test -f $(AIRFLOW_PASSWORDS) || (umask 077 && $(PYTHON) -c "import json, secrets, sys; \
		json.dump({'admin': secrets.token_urlsafe(12)}, open(sys.argv[1], 'w'))" $(AIRFLOW_PASSWORDS))
	chmod 600 $(AIRFLOW_PASSWORDS)

airflow: setup airflow-password
	@echo "Airflow UI: http://127.0.0.1:8080  user: admin  password: in $(AIRFLOW_PASSWORDS) (mode 0600)"
	$(AIRFLOW_ENV) AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=8080 AIRFLOW__CORE__PARALLELISM=4 \
		AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:8080/execution/ \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$(AIRFLOW_PASSWORDS) \
		$(BIN)/airflow standalone

# Benchmarks live outside the package (bench/); the Spark workers import bench.baselines, hence PYTHONPATH.
bench: setup
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench.scoring

# Detection quality: every registered model through `lakewatch backtest` on NAB and the demo data (bench/quality.py).
bench-quality: setup
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench.quality $(QUALITY_ARGS)

# Each signal of the default model apart on a walk-forward test week: its calibration's transfer, its ranking, the
# fused score's false alarms it owns (bench/signals.py; run bench-quality first: it writes the datasets).
bench-signals: setup
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench.signals $(BENCH_SIGNALS_ARGS)

# How causal windows are assembled in Spark, against the row-wise path (see bench/windows.py).
bench-windows: setup
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench.windows

clean:
	rm -rf $(VENV) .cache lakehouse spark-warehouse metastore_db bench-results
