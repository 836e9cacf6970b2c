"""Request dependencies: who is asking (session cookie or bearer token), what they may do,
CSRF checks, the as-of day, and page rendering."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from encours.store.db import unit_of_work
from encours.web import formatting
from encours.web.accounts import Principal, principal_for_token, principal_for_user
from encours.web.roles import allowed
from encours.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    SESSION_COOKIE,
    Signer,
    set_cookie,
    tokens_equal,
)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MIN_DAY, MAX_DAY = dt.date(1900, 1, 1), dt.date(2200, 12, 31)
DAY_PATTERN = r"^(19[0-9][0-9]|2[01][0-9][0-9]|2200)-"  # documents the range in the OpenAPI


class NotAuthenticated(Exception):
    """No valid session nor token: pages redirect to /login, the API answers 401."""


def db_url(request: Request) -> str | None:
    return request.app.state.db_url


async def db_url_dependency(request: Request) -> str | None:
    """`db_url` as a dependency: `async`, so that FastAPI does not hand it to the thread
    pool (a hand-off per request, waiting for the GIL under load)."""
    return request.app.state.db_url


def signer(request: Request) -> Signer:
    return request.app.state.signer


def _session(request: Request) -> dict | None:
    if "session" not in request.state._state:  # noqa: SLF001
        request.state.session = signer(request).load_session(request.cookies.get(SESSION_COOKIE))
    return request.state.session


async def current_principal(request: Request) -> Principal:
    """The session's user or the bearer token's principal. `async`: one indexed read, run
    on the event loop rather than handed to the thread pool (a hand-off per dependency
    costs more than the read under load)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal: Principal | None = None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        with unit_of_work(db_url(request)) as conn:
            principal = principal_for_token(conn, auth[7:].strip())
        if principal is None:
            raise NotAuthenticated()
        request.state.via_token = True
    else:
        session = _session(request)
        if session:
            with unit_of_work(db_url(request)) as conn:
                principal = principal_for_user(conn, int(session["u"]))
            if principal is not None and principal.session_version != session["v"]:
                principal = None  # password changed since: log in again
        if principal is None:
            raise NotAuthenticated()
        request.state.via_token = False
    request.state.principal = principal
    return principal


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not allowed(principal.role, permission):
            raise HTTPException(status_code=403, detail="your role does not allow this")
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


def csrf_token(request: Request) -> str:
    """The token forms must send back: the session's, else the pre-login cookie's."""
    session = _session(request)
    if session:
        return session["c"]
    existing = signer(request).load_prelogin_csrf(request.cookies.get(CSRF_COOKIE))
    if existing:
        return existing
    token = getattr(request.state, "new_prelogin_csrf", None)
    if token is None:
        from encours.web.security import new_csrf_token

        token = request.state.new_prelogin_csrf = new_csrf_token()
    return token


async def csrf_protect(request: Request) -> None:
    """Refuse (403) an unsafe request from a cookie session without the right CSRF token."""
    if request.method not in UNSAFE:
        return
    if request.headers.get("authorization", "")[:7].lower() == "bearer ":
        return  # tokens are not sent by browsers on their own: no CSRF
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    session = _session(request)
    expected = session["c"] if session else signer(request).load_prelogin_csrf(
        request.cookies.get(CSRF_COOKIE))  # fmt: skip
    if not tokens_equal(sent, expected):
        raise HTTPException(status_code=403, detail="missing or invalid CSRF token")


def as_of_param(
    as_of: Annotated[
        dt.date | None,
        Query(
            description="Position date (YYYY-MM-DD, years 1900 to 2200), default today.",
            json_schema_extra={"pattern": DAY_PATTERN},
        ),
    ] = None,
) -> dt.date:
    day = as_of or dt.date.today()
    if not MIN_DAY <= day <= MAX_DAY:
        raise HTTPException(status_code=422, detail="as_of must be between 1900 and 2200")
    return day


def language(request: Request) -> str:
    return (
        formatting.pick(request.query_params.get("lang"))
        or formatting.pick(request.cookies.get(LANG_COOKIE))
        or "fr"
    )


def render(
    request: Request, template: str, context: dict | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page in the request's language (and remember ?lang= in a cookie)."""
    lang = language(request)
    principal = getattr(request.state, "principal", None)
    _ = formatting.gettext_for(lang)
    role_names = {
        "admin": _("admin"), "credit_manager": _("credit manager"), "collector": _("collector"),
        "sales": _("sales"), "accountant": _("accountant"), "read_only": _("read-only"),
    }  # fmt: skip
    ctx = {
        "request": request, "lang": lang, "_": _,
        "fmt": formatting.Formatter(lang), "csrf_token": csrf_token(request),
        "principal": principal, "role_names": role_names,
        "can": (lambda perm: principal is not None and allowed(principal.role, perm)),
        **(context or {}),
    }  # fmt: skip
    html = request.app.state.templates.get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") and formatting.pick(request.query_params["lang"]):
        set_cookie(response, request, LANG_COOKIE, lang, 365 * 86400)
    new_token = getattr(request.state, "new_prelogin_csrf", None)
    if new_token:
        set_cookie(response, request, CSRF_COOKIE, signer(request).csrf.dumps(new_token), 43200)
    response.headers["cache-control"] = "no-store"
    return response


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AsOf = Annotated[dt.date, Depends(as_of_param)]
DbUrl = Annotated[str | None, Depends(db_url_dependency)]
