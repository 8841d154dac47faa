"""The Lakewatch view as the session's `airflow standalone` serves it (the plugin is loaded from the package's
entry point), over the lakehouse its REST-triggered lakewatch_score run wrote (tests/conftest.py)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from lakewatch.lakehouse import delta_rs
from lakewatch.orchestration.spark_jobs import run_id_for


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(base: str, path: str, method: str = "GET", token: str | None = None, cookie: str | None = None,
         body: object = None, headers: dict[str, str] | None = None) -> Answer:
    """One request, redirects not followed; the body is JSON unless it is bytes or a str."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if cookie:
        hdrs["Cookie"] = f"_token={cookie}"
    data = None
    if body is not None:
        text = body if isinstance(body, (bytes, str)) else json.dumps(body)
        data = text.encode() if isinstance(text, str) else text
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@pytest.fixture(scope="session")
def view(trained_lake, standalone, finished_score_run) -> dict:
    """What the tests of the view need: the server, a token, the score run's Lakewatch id and its events."""
    settings, _, _ = trained_lake
    base, token, log = standalone
    assert finished_score_run["state"] == "success", f"the score run failed: see {log}"
    run_id = run_id_for(finished_score_run["dag_run_id"], "score")
    events = delta_rs.read_pandas(settings, "events", filters=[("run_id", "=", run_id)])
    assert len(events) > 0, "the score run wrote no events: nothing to label"
    top = events.sort_values("peak_score", ascending=False).iloc[0]
    return {"base": base, "token": token, "settings": settings, "run_id": run_id,
            "dag_run_id": finished_score_run["dag_run_id"], "event_ids": list(events["event_id"]),
            "top_event": str(top["event_id"])}


def feedback_rows(settings) -> list[dict]:
    pdf = delta_rs.read_pandas(settings, "feedback", required=False)
    return [] if pdf.empty else pdf.to_dict(orient="records")
