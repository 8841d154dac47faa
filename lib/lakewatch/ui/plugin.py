"""The Airflow plugin (entry point `airflow.plugins`): the Lakewatch view under /lakewatch, in the navigation and
on each DAG run of lakewatch_score and lakewatch_train. Parsing it imports FastAPI and the app's routes only."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from lakewatch.ui.app import app
from lakewatch.ui.links import PREFIX


class LakewatchPlugin(AirflowPlugin):
    name = "lakewatch"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Lakewatch"}]
    external_views = [
        {"name": "Lakewatch", "href": "lakewatch/", "destination": "nav", "url_route": "lakewatch"},
        {"name": "Lakewatch run", "href": "lakewatch/dag-runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "lakewatch-run"},
    ]
