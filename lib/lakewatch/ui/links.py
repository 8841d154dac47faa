"""Where the Lakewatch view is: its prefix on the Airflow API server, and links to its pages (for XComs, logs)."""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "/lakewatch"


def api_base_url() -> str:
    """The Airflow API server's address from Airflow's configuration: `[api] base_url`, else its host and port."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback=None)
    if base:
        return base.rstrip("/")
    host = conf.get("api", "host", fallback="localhost")
    return f"http://{'localhost' if host in ('0.0.0.0', '::', '') else host}:{conf.get('api', 'port', fallback='8080')}"


def run_url(base_url: str, run_id: str) -> str:
    """The view's page of one Lakewatch run."""
    return f"{base_url.rstrip('/')}{PREFIX}/runs/{quote(run_id)}"
