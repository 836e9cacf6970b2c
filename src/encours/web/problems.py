"""Errors: application/problem+json (RFC 9457) for the API, HTML pages for people."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from encours.web.deps import NotAuthenticated, render
from encours.web.security import BodyTooLarge

log = logging.getLogger("encours.web")
PROBLEM = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict] | None = None


PROBLEM_RESPONSES: dict[int | str, dict] = {
    status: {"model": Problem, "content": {PROBLEM: {}}, "description": HTTPStatus(status).phrase}
    for status in (400, 401, 403, 404, 413, 422)
}


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/openapi.json", "/health")


def problem(
    request: Request,
    status: int,
    detail: str | None = None,
    errors: list[dict] | None = None,
    headers: dict | None = None,
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail,
                   instance=request.url.path, errors=errors)  # fmt: skip
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        media_type=PROBLEM, headers=headers)  # fmt: skip


def _page_error(request: Request, status: int, detail: str | None) -> Response:
    return render(request, "error.html", {"status": status, "detail": detail}, status)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _exc: NotAuthenticated) -> Response:
        if wants_json(request) or request.headers.get("authorization"):
            return problem(request, 401, "authentication required (session or Bearer token)",
                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_json(request):
            return problem(request, exc.status_code, str(exc.detail) if exc.detail else None,
                           headers=getattr(exc, "headers", None))  # fmt: skip
        return _page_error(request, exc.status_code, str(exc.detail) if exc.detail else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]  # fmt: skip
        if wants_json(request):
            return problem(request, 422, "invalid request parameters", errors)
        return _page_error(request, 422, "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}"
                                                   for e in errors))  # fmt: skip

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, _exc: BodyTooLarge) -> Response:
        return problem(request, 413, "the request body is too large")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if wants_json(request):
            return problem(request, 500, "internal error")
        return _page_error(request, 500, None)
