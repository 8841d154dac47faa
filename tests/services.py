"""The servers of the slowest tests, a Spark standalone cluster and `airflow standalone`, started in the background
shortly before the tests that use them (tests/conftest.py, `Services`), so that their start-up overlaps the rest of
the suite; the tests that use them run last
(tests/conftest.py). Each is stopped through the process ids it recorded, never by name."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = str(REPO / "infra" / "spark-cluster.sh")
AIRFLOW_PASSWORD = "lakewatch-test-only"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Started:
    """A server being started: its process (the start script, or the server itself), environment and log."""

    proc: subprocess.Popen
    env: dict[str, str]
    log: Path
    info: dict[str, str] = field(default_factory=dict)


def start_cluster(state: Path, base_env: dict[str, str]) -> Started:
    """`spark-cluster.sh start 2` (master + 2 workers, C1-only daemons) in the background."""
    env = {
        **base_env, "LAKEWATCH_CLUSTER_DIR": str(state), "MASTER_PORT": str(free_port()),
        "MASTER_UI_PORT": str(free_port()), "WORKER_UI_PORT": str(free_port()), "WORKER_MEMORY": "1g",
        "VENV": str(Path(sys.executable).parents[1]), "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1",
    }
    log = state / "start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([CLUSTER_SCRIPT, "start", "2"], env=env, stdout=out, stderr=subprocess.STDOUT)
    return Started(proc, env, log)


def stop_cluster(started: Started) -> None:
    if started.proc.poll() is None:
        started.proc.wait(timeout=180)
    subprocess.run([CLUSTER_SCRIPT, "stop"], env=started.env, capture_output=True, timeout=120)


def start_airflow(airflow_env: dict[str, str], home: Path) -> Started:
    """`airflow standalone` (scheduler, API server, DAG processor, LocalExecutor) on a free port, with an
    AIRFLOW_HOME and SQLite database of its own (the `airflow dags test` runs of other tests use theirs while
    it starts), in its own process group."""
    port = free_port()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": AIRFLOW_PASSWORD}))
    env = {
        **airflow_env, "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # the DAG files do not change during the session: parsed once, not every 30 s on a CPU the suite needs
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
    }
    log = home / "standalone.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["airflow", "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Started(proc, env, log, {"base": f"http://127.0.0.1:{port}"})


def migrate_airflow(env: dict[str, str], folder: Path) -> Started:
    """`airflow db migrate` of env's AIRFLOW_HOME, in the background (its own process group)."""
    log = folder / "migrate.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["airflow", "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Started(proc, env, log)


def stop_airflow(started: Started) -> None:
    """SIGTERM to its process group, SIGKILL if it lingers."""
    if started.proc.poll() is not None:
        return
    os.killpg(started.proc.pid, signal.SIGTERM)
    try:
        started.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(started.proc.pid, signal.SIGKILL)
        started.proc.wait(timeout=30)


def call(base: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    """One request to the Airflow REST API (POST with a body, else GET), its JSON answer."""
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def wait_for(what: str, check, timeout: float):
    """check() until it returns something true (connection errors count as not yet), at most timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, OSError, KeyError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}: {last}")
