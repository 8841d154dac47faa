"""The Lakewatch view: a FastAPI app that the Airflow API server serves under /lakewatch (lakewatch.ui.plugin).

Pages (HTML): the datasets overview, a run (its report and events), an event (plot, explanation, feedback and
the buttons to label it), the models. API (JSON): an event's feedback, read and added. Every route requires an
authenticated Airflow user (lakewatch.ui.auth); the author of a label is that user, never a field of the request.
Reads go through delta-rs (lakewatch.ui.reads) in FastAPI's thread pool; nothing here starts Spark.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from lakewatch.config import Settings
from lakewatch.errors import DataError, NotFoundError, RegistryError
from lakewatch.ui.auth import NotAuthenticated, User, current_user

UserDep = Annotated[User, Depends(current_user)]
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
log = logging.getLogger("lakewatch.ui")


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The profile of the API server's environment (LAKEWATCH_HOME / LAKEWATCH_CONF / LAKEWATCH_LAKEHOUSE)."""
    from lakewatch.config import load_settings

    return load_settings()


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: int = Field(ge=1)


class FeedbackIn(BaseModel):
    """A label from the view. Unknown fields (an `author` among them) are ignored: the author is the user."""

    model_config = ConfigDict(extra="ignore")
    label: Literal["anomaly", "false_alarm"]
    note: str | None = Field(default=None, max_length=2000)


def create_app() -> FastAPI:
    app = FastAPI(title="Lakewatch", description="Anomalies, events, feedback and models of the lakehouse",
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(NotAuthenticated)
    async def _login(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.reason}, status_code=401)
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(RegistryError)
    async def _refused(request: Request, exc: RegistryError) -> Response:
        return _error(request, 404 if str(exc).startswith("no model") else 409, str(exc))

    @app.exception_handler(DataError)
    async def _bad(request: Request, exc: DataError) -> Response:
        return _error(request, 400, str(exc))

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, user: UserDep) -> str:
        from lakewatch.ui import pages, reads

        return pages.overview(reads.overview(settings()), user.name, _root(request))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(request: Request, run_id: str, user: UserDep) -> str:
        from lakewatch.ui import pages, reads

        return pages.run(reads.run(settings(), run_id), user.name, _root(request))

    @app.get("/runs/{run_id}/report")
    def report(run_id: str, user: UserDep) -> Response:
        from lakewatch.ui import reads

        body = reads.read_report(settings(), reads.report_path(settings(), run_id))
        return Response(body, media_type="text/html", headers={"Content-Security-Policy": "sandbox"})

    @app.get("/dag-runs/{dag_id}/{dag_run_id}")
    def dag_run(request: Request, dag_id: str, dag_run_id: str, user: UserDep) -> Response:
        """The Airflow DAG run page's link: the run of its score (or train) task."""
        from lakewatch.orchestration.spark_jobs import run_id_for

        task = "train" if dag_id == "lakewatch_train" else "score"
        return RedirectResponse(f"{_root(request)}/runs/{run_id_for(dag_run_id, task)}", status_code=303)

    @app.get("/events/{event_id}", response_class=HTMLResponse)
    def event(request: Request, event_id: str, user: UserDep) -> str:
        from lakewatch.ui import pages, reads

        return pages.event(reads.event(settings(), event_id), user.name, _root(request))

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request, user: UserDep) -> str:
        from lakewatch.ui import pages, reads

        return pages.models(reads.models(settings()), user.name, _root(request))

    @app.get("/api/events/{event_id}/feedback")
    def feedback_history(event_id: str, user: UserDep) -> list[dict]:
        from lakewatch.feedback import store

        store.find_event(settings(), event_id)
        pdf = store.history(settings(), event_id=event_id)
        return [] if pdf.empty else _json_rows(pdf)

    @app.post("/api/events/{event_id}/feedback", status_code=201)
    def add_feedback(event_id: str, body: FeedbackIn, user: UserDep) -> dict:
        from lakewatch.feedback import store

        row = store.add(settings(), event_id, body.label, user.name, body.note, source="ui")
        return {"event_id": row.event_id, "label": row.label, "author": row.author, "at": row.at.isoformat(),
                "note": row.note}

    @app.post("/api/models/{name}/promote")
    def promote(name: str, body: PromoteIn, user: UserDep) -> dict:
        from lakewatch.packaging import registry_rs

        changes = registry_rs.promote(settings(), _model_name(name), body.version)
        log.info("%s promoted %s v%s", user.name, name, body.version)
        return {"changes": [{"version": c.version, "stage": c.stage} for c in changes], "by": user.name}

    @app.post("/api/models/{name}/rollback")
    def rollback(name: str, user: UserDep) -> dict:
        from lakewatch.packaging import registry_rs

        changes = registry_rs.rollback(settings(), _model_name(name))
        log.info("%s rolled back %s to v%s", user.name, name, changes[-1].version)
        return {"changes": [{"version": c.version, "stage": c.stage} for c in changes], "by": user.name}

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown_api(rest: str, user: UserDep) -> Response:
        raise HTTPException(status_code=404, detail=f"no Lakewatch API at /api/{rest}")

    return app


def _model_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise DataError(f"{name!r} is not a model name")
    return name


def _root(request: Request) -> str:
    """Where the app is mounted (/lakewatch, under the API server's base path if it has one)."""
    return request.scope.get("root_path", "").rstrip("/")


def _is_api(request: Request) -> bool:
    return request.url.path.removeprefix(_root(request)).startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    from html import escape

    return HTMLResponse(f"<!doctype html><title>Lakewatch</title><p>{escape(message)}</p>"
                        f"<p><a href='{_root(request)}/'>Lakewatch</a></p>", status_code=status)


def _json_rows(pdf) -> list[dict]:
    import json

    return json.loads(pdf.to_json(orient="records", date_format="iso"))


app = create_app()
