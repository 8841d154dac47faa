"""The Lakewatch view's pages and API under the real `airflow standalone`: every route needs an Airflow user,
writes are JSON and same-origin, the author is the logged-in user, bad requests write nothing."""

from __future__ import annotations

import pytest

from tests.ui.conftest import feedback_rows, send

pytestmark = pytest.mark.airflow_server


def test_the_plugin_is_loaded_once_with_its_views(view):
    plugins = send(view["base"], "/api/v2/plugins", token=view["token"]).json()["plugins"]
    ours = [p for p in plugins if p["name"] == "lakewatch"]
    assert len(ours) == 1 and ours[0]["fastapi_apps"][0]["url_prefix"] == "/lakewatch"
    assert {v["destination"] for v in ours[0]["external_views"]} == {"nav", "dag_run"}
    errors = send(view["base"], "/api/v2/plugins/importErrors", token=view["token"]).json()["import_errors"]
    assert errors == []


@pytest.mark.parametrize("path", ["/lakewatch/", "/lakewatch/models", "/lakewatch/runs/{run}",
                                  "/lakewatch/events/{event}", "/lakewatch/runs/{run}/report"])
def test_pages_redirect_an_anonymous_user_to_the_login_and_serve_a_logged_in_one(view, path):
    path = path.format(run=view["run_id"], event=view["top_event"])
    anonymous = send(view["base"], path)
    assert anonymous.status == 303 and anonymous.headers["location"].startswith("/auth/login?next=")
    forged = send(view["base"], path, cookie="not-a-jwt")
    assert forged.status == 303
    page = send(view["base"], path, cookie=view["token"])
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")


def test_the_run_page_lists_its_events_and_the_dag_run_link_leads_to_it(view):
    page = send(view["base"], f"/lakewatch/runs/{view['run_id']}", token=view["token"]).body.decode()
    assert all(f"/lakewatch/events/{e}" in page for e in view["event_ids"])
    assert "<svg class='scores'" in page and "Events by severity" in page
    link = send(view["base"], f"/lakewatch/dag-runs/lakewatch_score/{view['dag_run_id']}", token=view["token"])
    assert link.status == 303 and link.headers["location"].endswith(f"/lakewatch/runs/{view['run_id']}")


def test_the_api_answers_401_without_a_valid_token_and_writes_nothing(view):
    path = f"/lakewatch/api/events/{view['top_event']}/feedback"
    before = len(feedback_rows(view["settings"]))
    assert send(view["base"], path).status == 401
    assert send(view["base"], path, "POST", body={"label": "anomaly"}).status == 401
    assert send(view["base"], path, "POST", token=view["token"] + "x", body={"label": "anomaly"}).status == 401
    assert len(feedback_rows(view["settings"])) == before


@pytest.mark.parametrize("event, body, kwargs, status, says", [
    ("zzz", {"label": "anomaly"}, {}, 400, "not an event id"),
    ("aaaaaaaaaaaaaaaaaaaa", {"label": "anomaly"}, {}, 404, "no event aaaaaaaaaaaaaaaaaaaa"),
    ("{top}", {"label": "maybe"}, {}, 422, "anomaly"),
    ("{top}", {"label": "anomaly", "note": "x" * 2001}, {}, 422, "2000"),
    ("{top}", "label=anomaly", {"headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415, "json"),
    ("{top}", {"label": "anomaly"}, {"cookie": True, "headers": {"Origin": "http://evil.example"}}, 403, "cross-site"),
    ("{top}", {"label": "anomaly"}, {"cookie": True}, 403, "cross-site"),
])
def test_a_bad_write_gets_a_clear_4xx_and_writes_nothing(view, event, body, kwargs, status, says):
    path = f"/lakewatch/api/events/{event.format(top=view['top_event'])}/feedback"
    auth = {"cookie": view["token"]} if kwargs.pop("cookie", False) else {"token": view["token"]}
    before = len(feedback_rows(view["settings"]))
    answer = send(view["base"], path, "POST", body=body, **auth, **kwargs)
    assert answer.status == status and says in answer.body.decode()
    assert len(feedback_rows(view["settings"])) == before


def test_the_author_is_the_logged_in_user_whatever_the_request_says(view):
    event = view["event_ids"][-1]
    path = f"/lakewatch/api/events/{event}/feedback"
    before = len([r for r in feedback_rows(view["settings"]) if r["event_id"] == event])
    answer = send(view["base"], path, "POST", token=view["token"],
                  body={"label": "anomaly", "note": "seen on the dashboard", "author": "mallory"})
    assert answer.status == 201 and answer.json()["author"] == "admin"
    same_origin = send(view["base"], path, "POST", cookie=view["token"], body={"label": "false_alarm"},
                       headers={"Origin": view["base"]})
    assert same_origin.status == 201
    history = send(view["base"], path, token=view["token"]).json()  # newest first
    assert len(history) == before + 2
    assert [(h["label"], h["author"], h["source"]) for h in history[:2]] == [("false_alarm", "admin", "ui"),
                                                                            ("anomaly", "admin", "ui")]
    assert history[1]["note"] == "seen on the dashboard"


def test_promote_and_rollback_answer_with_the_registry_rules_and_need_a_user(view):
    base, token = view["base"], view["token"]
    name = "demo_metrics"
    assert send(base, f"/lakewatch/api/models/{name}/rollback", "POST", body={}).status == 401
    first = send(base, f"/lakewatch/api/models/{name}/rollback", "POST", token=token, body={})
    assert first.status == 409 and "nothing to roll back to" in first.json()["detail"]
    same = send(base, f"/lakewatch/api/models/{name}/promote", "POST", token=token, body={"version": 1})
    assert same.status == 200 and same.json()["changes"] == []  # production already: nothing changes
    missing = send(base, f"/lakewatch/api/models/{name}/promote", "POST", token=token, body={"version": 9})
    assert missing.status == 404 and f"no model {name} v9" in missing.json()["detail"]
    assert send(base, f"/lakewatch/api/models/{name}/promote", "POST", token=token, body={"version": 0}).status == 422
    assert send(base, "/lakewatch/api/models/bad%20name/promote", "POST", token=token, body={"version": 1}).status == 400
    page = send(base, "/lakewatch/models", token=token).body.decode()
    assert "<table class='models'>" in page and f"roll back {name}" in page
