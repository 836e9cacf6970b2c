"""The web application (FastAPI, Jinja2, HTMX): `encours serve`.

`create_app(db_url)` builds the application; `serve(...)` runs it with uvicorn;
`ensure_demo_user(db_url)` gives `encours demo` an admin login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(db_url: str | None = None) -> FastAPI:
    from encours.web.app import create_app as _create

    return _create(db_url)


def ensure_demo_user(db_url: str | None) -> tuple[str, str]:
    """Create (or reset) the admin `demo` user; returns (username, password)."""
    from encours.web.accounts import ensure_demo_user as _ensure

    return _ensure(db_url)


def serve(
    db_url: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_demo_user: tuple[str, str] | None = None,
) -> None:
    """Run the server until interrupted; print the address (and the demo login, once)."""
    import uvicorn

    from encours.i18n import _

    app = create_app(db_url)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    print(_("encours is served on http://{host}:{port}/ (Ctrl+C to stop)").format(
        host=shown, port=port), flush=True)  # fmt: skip
    if open_demo_user:
        print(_("Log in as {user} with the password {password}").format(
            user=open_demo_user[0], password=open_demo_user[1]), flush=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info",
                server_header=False)  # fmt: skip


__all__ = ["create_app", "ensure_demo_user", "serve"]
