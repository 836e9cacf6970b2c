"""The web application (FastAPI, Jinja2, HTMX): `encours serve`.

`create_app(db_url)` builds the application; `serve(...)` runs it with uvicorn (one
process, or `workers` processes built by the factories `create_app` / `create_api_app`
from ENCOURS_DB); `ensure_demo_user(db_url)` gives `encours demo` an admin login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(db_url: str | None = None) -> FastAPI:
    from encours.web.app import create_app as _create

    return _create(db_url)


def create_api_app() -> FastAPI:
    """The API-only application (/api/v1, /openapi.json, /health) on ENCOURS_DB: the
    factory of `encours serve --api-only --workers N`."""
    from encours.web.app import create_app as _create

    return _create(None, api_only=True)


def ensure_demo_user(db_url: str | None) -> tuple[str, str]:
    """Create (or reset) the admin `demo` user; returns (username, password)."""
    from encours.web.accounts import ensure_demo_user as _ensure

    return _ensure(db_url)


def serve(
    db_url: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_demo_user: tuple[str, str] | None = None,
    *,
    workers: int = 1,
    api_only: bool = False,
) -> None:
    """Run the server until interrupted; print the address (and the demo login, once).

    `workers` > 1: that many uvicorn worker processes, each building the application from
    the factory (`create_app`, or `create_api_app` with `api_only`) on ENCOURS_DB, each
    with its own cache. They must sign sessions and CSRF tokens with the same key:
    ENCOURS_SECRET_KEY from the environment, else one random key drawn here for all of
    them (sessions then end when the server restarts). `api_only`: /api/v1 only (no
    pages), e.g. a second process on another port for the integrations' order checks.
    """
    import os
    import secrets

    import uvicorn

    from encours.i18n import _
    from encours.store.db import get_engine, resolve_url

    url = resolve_url(db_url)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    if api_only:
        message = _("encours API (no pages) is served on http://{host}:{port}/api/v1/ "
                    "(Ctrl+C to stop)")  # fmt: skip
    else:
        message = _("encours is served on http://{host}:{port}/ (Ctrl+C to stop)")
    print(message.format(host=shown, port=port), flush=True)
    if open_demo_user:
        print(_("Log in as {user} with the password {password}").format(
            user=open_demo_user[0], password=open_demo_user[1]), flush=True)  # fmt: skip
    options = {"host": host, "port": port, "proxy_headers": True, "log_level": "info",
               "server_header": False}  # fmt: skip
    if workers <= 1:
        app = create_app(url) if not api_only else create_api_app_on(url)
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    os.environ["ENCOURS_DB"] = url  # the workers build their application from it
    if not os.environ.get("ENCOURS_SECRET_KEY"):
        print(_("ENCOURS_SECRET_KEY is not set: one random key for the {n} workers (sessions "
                "end when the server restarts)").format(n=workers), flush=True)  # fmt: skip
        os.environ["ENCOURS_SECRET_KEY"] = secrets.token_urlsafe(48)
    get_engine(url)  # migrate once here, not in every worker at the same time
    factory = "encours.web:create_api_app" if api_only else "encours.web:create_app"
    uvicorn.run(factory, factory=True, workers=workers, **options)  # type: ignore[arg-type]


def create_api_app_on(db_url: str | None) -> FastAPI:
    """The API-only application on `db_url` (one process)."""
    from encours.web.app import create_app as _create

    return _create(db_url, api_only=True)


__all__ = ["create_api_app", "create_api_app_on", "create_app", "ensure_demo_user", "serve"]
