"""Who is asking: the Airflow user behind a request to the Lakewatch view, or no answer at all.

Airflow does not protect a plugin's FastAPI app, so every route depends on `current_user`: the JWT of Airflow's
auth manager, from the `Authorization: Bearer` header (scripts, as for the REST API) or the `_token` cookie the
Airflow UI sets at login (the browser). The same auth manager checks that the user may see (GET) or act on (POST)
the "Lakewatch" custom view. Writes also need a JSON body and, when the cookie carries the identity, an Origin
or Referer of this server: a form on another site cannot post feedback in the user's name (the cookie is also
SameSite=Lax). Airflow's modules are imported when a request comes, never when the plugin is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

RESOURCE = "Lakewatch"
COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


class NotAuthenticated(Exception):
    """No valid Airflow identity on the request: pages redirect to the login page, the API answers 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class User:
    name: str
    via_cookie: bool


def _token(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    return request.cookies.get(COOKIE), True


async def current_user(request: Request) -> User:
    """The authenticated, authorised Airflow user (NotAuthenticated / 403 otherwise)."""
    from airflow.api_fastapi.app import get_auth_manager
    from jwt import InvalidTokenError

    token, via_cookie = _token(request)
    if not token:
        raise NotAuthenticated("not authenticated: log in to Airflow, or send an Airflow API token")
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except InvalidTokenError:  # expired, revoked or forged
        raise NotAuthenticated("the Airflow token is invalid or expired: log in again") from None
    method = "GET" if request.method in ("GET", "HEAD") else "POST"
    if not manager.is_authorized_custom_view(method=method, resource_name=RESOURCE, user=user):
        raise HTTPException(status_code=403, detail=f"user {user.get_name()} may not {method} the Lakewatch view")
    if method == "POST":
        _check_write(request, via_cookie)
    return User(name=user.get_name(), via_cookie=via_cookie)


def _check_write(request: Request, via_cookie: bool) -> None:
    """A write is JSON, and same-origin when the browser's cookie authenticates it."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(status_code=415, detail="send the request body as application/json")
    if not via_cookie:
        return
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "")
    if not source or urlsplit(source).netloc != host:
        raise HTTPException(status_code=403, detail="cross-site write refused (Origin does not match this server)")
