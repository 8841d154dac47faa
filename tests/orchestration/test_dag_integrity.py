"""Every DAG parses with no error and no deprecation warning, cheaply, with tags, owners, retries and docs."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(DAGS))
    deprecations = [w for w in caught if "deprecat" in (w.category.__name__ + str(w.message)).lower()]
    return bag, deprecations


def test_dags_import_without_errors_or_deprecations(dagbag):
    bag, deprecations = dagbag
    assert bag.import_errors == {}
    assert [str(w.message) for w in deprecations] == []
    assert set(bag.dag_ids) == {p.stem for p in DAGS.glob("*.py")} == {"lakewatch_score", "lakewatch_train"}


def test_every_dag_and_task_is_documented_owned_and_retried(dagbag):
    bag, _ = dagbag
    for dag in bag.dags.values():
        assert dag.tags and "lakewatch" in dag.tags, dag.dag_id
        assert dag.doc_md and dag.description, dag.dag_id
        for t in dag.tasks:
            assert t.owner == "lakewatch", t.task_id
            assert t.doc_md, f"{dag.dag_id}.{t.task_id} has no doc"
            if t.task_id != "drift_gate":
                assert t.retries >= 1, t.task_id
            assert t.execution_timeout is not None, t.task_id


def test_score_dag_task_order(dagbag):
    bag, _ = dagbag
    dag = bag.dags["lakewatch_score"]
    down = {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}
    assert down["interval"] == {"score"}  # one validation per run: inside the score job
    assert down["score"] == {"drift_check", "has_labels"}
    assert down["has_labels"] == {"evaluate"}
    assert down["evaluate"] == {"summary"}
    assert down["drift_check"] == {"drift_gate", "should_retrain"}
    assert down["drift_gate"] == {"summary"}
    assert down["should_retrain"] == {"request_retraining"}
    assert [a.name for a in dag.get_task("score").outlets] == ["lakewatch_scores", "lakewatch_events"]
    assert dag.get_task("summary").trigger_rule == "all_done"


def test_train_dag_task_order_and_asset_schedule(dagbag):
    bag, _ = dagbag
    dag = bag.dags["lakewatch_train"]
    assert [t.task_id for t in dag.topological_sort()] == ["interval", "train", "summary"]
    assert "lakewatch_drift_alert" in str(dag.timetable.asset_condition)


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_a_dag_imports_no_pyspark_or_torch(dag_file):
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pyspark', 'torch') if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(DAGS / dag_file)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-500:] + out.stderr[-2000:]


def test_run_id_template_renders_as_run_id_for():
    from jinja2 import Template

    from lakewatch.orchestration.spark_jobs import run_id_for, run_id_template

    airflow_id = "scheduled__2026-03-04T00:00:00+00:00"
    assert Template(run_id_template("score")).render(run_id=airflow_id) == run_id_for(airflow_id, "score")
