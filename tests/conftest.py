"""One SparkSession for the whole test session, over a temporary lakehouse."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path

import pytest

from lakewatch.config import Settings, load_settings
from tests.services import (AIRFLOW_PASSWORD, call, migrate_airflow, start_airflow, start_cluster, stop_airflow,
                            stop_cluster, wait_for)

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers run this venv's Python, as the driver does


# small tables: one task per Delta state rebuild, no UI, no stats-driven file skipping work to speak of
TEST_SPARK_OPTIONS = {
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.ui.enabled": "false",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
    # test data is tiny: compiling each query's whole-stage code costs more than running it (~8 % of the suite)
    "spark.sql.codegen.wholeStage": "false",
}


# jobs started out of process are short: a JVM that only JIT-compiles with C1 starts them about 25 % faster, and
# their queries, each run once in a cold JVM, cost less uncompiled (as the suite's own do)
SUBPROCESS_SPARK_OPTIONS = ("spark.databricks.delta.snapshotPartitions: '1', spark.ui.enabled: 'false', "
                            "spark.sql.codegen.wholeStage: 'false', "
                            "spark.driver.extraJavaOptions: '-Duser.timezone=UTC -XX:TieredStopAtLevel=1'")


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    lakehouse = tmp_path_factory.mktemp("lakehouse")
    settings = load_settings("local", env={}).with_lakehouse(str(lakehouse))
    options = {**settings.spark.options, **TEST_SPARK_OPTIONS}
    spark = settings.spark.model_copy(update={"master": "local[2]", "shuffle_partitions": 2, "options": options})
    training = settings.training.model_copy(update={"sample_size": 20_000})
    small = settings.model_copy(update={"spark": spark, "training": training})
    return small.with_model_overrides("dense_ae", {"epochs": 12}).with_model_overrides(
        "tcn", {"epochs": 4, "min_steps": 120, "members": 2})


@pytest.fixture(scope="session")
def spark(base_settings: Settings):
    from lakewatch.lakehouse.session import build_session

    session = build_session(base_settings, app_name="lakewatch-tests")
    yield session
    session.stop()


@pytest.fixture()
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    """A lakehouse of the test's own, so that tests do not see each other's tables."""
    return base_settings.with_lakehouse(str(tmp_path / "lakehouse"))


DEMO_START = date(2026, 3, 2)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trained_lake(spark, base_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """A lakehouse with 6 days of generated demo data and a production model trained on the first 3.

    Shared by the tests that run jobs out of process (Airflow, the Spark cluster): each scores its own day.
    """
    from lakewatch.data.intervals import Interval
    from lakewatch.data.spec import load_dataset_spec
    from lakewatch.demo.generate import GeneratorParams, write_generated
    from lakewatch.pipeline.train import run_train

    root = tmp_path_factory.mktemp("shared-lake")
    settings = base_settings.with_lakehouse(str(root / "lakehouse"))
    spec = load_dataset_spec("demo_metrics", settings)
    params = GeneratorParams(start=DEMO_START, days=6, entities=4, seed=9, anomaly_rate=0.5)
    write_generated(spark, params, spec.table_path(settings), spec.labels_path(settings))
    run_train(spark, settings, spec, Interval(DEMO_START, date(2026, 3, 5)), "dense_ae")
    profile = root / "test-profile.yaml"
    profile.write_text(
        f"profile: test\nlakehouse: {settings.lakehouse}\n"
        "spark: {master: 'local[2]', shuffle_partitions: 2, driver_memory: 2g,"
        f" options: {{{SUBPROCESS_SPARK_OPTIONS}}}}}\n"
        "airflow: {retries: 1, retry_delay_s: 5, score_schedule: null, train_schedule: null}\n"
    )
    return settings, spec, profile


def subprocess_env(profile: Path, **extra: str) -> dict[str, str]:
    """The environment of a job run out of process: the venv first on PATH, loopback, the test profile."""
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEWATCH"))}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}", SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable, LAKEWATCH_CONF=str(profile), LAKEWATCH_HOME=str(REPO), **extra,
    )
    return env


DAGS = REPO / "dags"
SPARK_CONN = '{"conn_type": "spark", "host": "local[2]"}'
SERVICE_MARKERS = ("cluster", "airflow_server")


def _service_order(item: pytest.Item) -> int:
    airflow = item.get_closest_marker("airflow_server")
    if airflow is not None:
        return 1 if airflow.kwargs.get("first") else 3
    return 2 if item.get_closest_marker("cluster") else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that need servers of their own run last: the servers start in the background (`services`)
    while the last of the rest of the suite runs. The Airflow run is triggered before the cluster test
    (`first=True`) and checked after it, so that the two out-of-process jobs overlap."""
    items.sort(key=_service_order)


@pytest.fixture(scope="session")
def airflow_base_env(trained_lake, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Airflow's environment: its own home and SQLite database (`airflow_env` migrates it), the DAG folder."""
    _, _, profile = trained_lake
    home = tmp_path_factory.mktemp("airflow-home")
    return subprocess_env(
        profile,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW_CONN_SPARK_LOCAL=SPARK_CONN,
    )


@pytest.fixture(scope="session")
def airflow_env(airflow_base_env: dict[str, str], services,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Airflow for `airflow dags test`: its database migrated (in the background since the session started,
    `services`, when a selected test needed it then)."""
    migrating = services.get("airflow_db") or migrate_airflow(airflow_base_env,
                                                               tmp_path_factory.mktemp("airflow-migrate"))
    assert migrating.proc.wait(timeout=300) == 0, migrating.log.read_text()[-3000:]
    return airflow_base_env


SERVER_LEAD = 40  # the servers start this many tests before the first that needs them (about a minute of the suite)


class Services:
    """The session's background services (tests/services.py): `airflow db migrate` from the start, the Spark
    standalone cluster and `airflow standalone` from `SERVER_LEAD` tests before the first test that needs them
    (or when a test asks for them, whichever comes first). Idle servers are not free on two cores: `airflow
    standalone` alone burns several seconds of CPU a minute, which the rest of the suite would pay for."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
        items = request.session.items
        self.wanted = {m for item in items for m in SERVICE_MARKERS if item.get_closest_marker(m)}
        first = next((i for i, item in enumerate(items)
                      if any(item.get_closest_marker(m) for m in SERVICE_MARKERS)), None)
        self.start_at = items[max(0, first - SERVER_LEAD)].nodeid if first is not None else None
        self.started: dict[str, object] = {}
        self.failed: dict[str, BaseException] = {}  # a server that could not be started: why, for its tests
        self._request, self._tmp = request, tmp_path_factory
        self._servers = False

    def start_servers(self) -> None:
        """Starts each wanted server once; one that fails to start does not keep the other from starting, and
        its error is raised again to each test that asks for it (not only to the test it was started at)."""
        if self._servers:
            return
        self._servers = True
        starts = {"cluster": lambda: start_cluster(self._tmp.mktemp("cluster"), subprocess_env(Path("/nonexistent"))),
                  "airflow": lambda: start_airflow(self._request.getfixturevalue("airflow_base_env"),
                                                   self._tmp.mktemp("standalone"))}
        for name, marker in (("cluster", "cluster"), ("airflow", "airflow_server")):
            if marker in self.wanted:
                try:
                    self.started[name] = starts[name]()
                except Exception as exc:
                    self.failed[name] = exc

    def __getitem__(self, name: str):
        if name in ("cluster", "airflow"):
            self.start_servers()
            if name in self.failed:
                raise RuntimeError(f"the {name} server could not be started") from self.failed[name]
        return self.started[name]

    def get(self, name: str):
        return self.started.get(name)

    def stop(self) -> None:
        """Stops what was started, each on its own: one that fails to stop does not leave the others running."""
        errors = []
        for name, stop in (("airflow", stop_airflow), ("airflow_db", stop_airflow), ("cluster", stop_cluster)):
            if name in self.started:
                try:
                    stop(self.started[name])
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session", autouse=True)
def services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The background services of the selected tests (`Services`); stopped at the end of the session."""
    started = Services(request, tmp_path_factory)
    try:
        if any("airflow_env" in item.fixturenames for item in request.session.items):
            started.started["airflow_db"] = migrate_airflow(request.getfixturevalue("airflow_base_env"),
                                                            tmp_path_factory.mktemp("airflow-migrate"))
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def _servers_in_time(request: pytest.FixtureRequest, services: Services) -> None:
    """Starts the servers at the test `Services` chose, so that they are up when the tests that need them run."""
    if request.node.nodeid == services.start_at:
        services.start_servers()


# The session's `airflow standalone` (tests/services.py) and the lakewatch_score run triggered through its REST API.
# Both are session-scoped: the run is triggered by the first test that needs it and checked by later ones (the
# REST API's, the Lakewatch view's), while the Spark cluster test runs in between, so that the two out-of-process
# jobs overlap.
@pytest.fixture(scope="session")
def standalone(services) -> tuple[str, str, object]:
    """(base URL, API token, log path) of `airflow standalone`, once its API server answers."""
    started = services["airflow"]
    base = started.info["base"]
    alive = lambda: started.proc.poll() is None and call(base, "/api/v2/monitor/health")  # noqa: E731
    wait_for("the API server", alive, 240)
    token = call(base, "/auth/token", body={"username": "admin", "password": AIRFLOW_PASSWORD})["access_token"]
    return base, token, started.log


@pytest.fixture(scope="session")
def score_dag_run(trained_lake, standalone, tmp_path_factory) -> tuple[dict, dict]:
    """lakewatch_score triggered through the REST API with a conf: (the conf, the DAG run as the API returned it).

    A spec without labels (the same data and model name) keeps the run to one Spark job: `evaluate` is
    short-circuited (evaluate through Airflow runs in `make demo`; the job itself is tested in process)."""
    _, spec, _ = trained_lake
    base, token, _ = standalone
    spec_file = tmp_path_factory.mktemp("rest-api") / "demo_metrics_unlabeled.yaml"
    spec_file.write_text(json.dumps(spec.model_dump(mode="json", exclude_none=True, exclude={"labels"})))
    wait_for("the DAG to be parsed", lambda: call(base, "/api/v2/dags/lakewatch_score", token)["dag_id"], 240)
    conf = {"dataset": str(spec_file), "start": "2026-03-04", "end": "2026-03-05"}
    return conf, call(base, "/api/v2/dags/lakewatch_score/dagRuns", token, {"logical_date": None, "conf": conf})


@pytest.fixture(scope="session")
def finished_score_run(standalone, score_dag_run) -> dict:
    """The REST-triggered lakewatch_score run once it has finished (its DAG run as the API returns it)."""
    base, token, _ = standalone
    path = f"/api/v2/dags/lakewatch_score/dagRuns/{score_dag_run[1]['dag_run_id']}"
    wait_for("the run to finish", lambda: call(base, path, token)["state"] in ("success", "failed"), 600)
    return call(base, path, token)
