"""The FastAPI application: pages, /api/v1, /openapi.json, /docs, /static, /health."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from encours import __version__
from encours.store.db import get_engine, resolve_url
from encours.web import problems
from encours.web.api.routes import router as api_router
from encours.web.deps import NotAuthenticated, PrincipalDep
from encours.web.pages.routes import router as pages_router
from encours.web.security import (
    MAX_UPLOAD_BYTES,
    LimitsAndHeadersMiddleware,
    Signer,
    secret_key,
)

HERE = Path(__file__).resolve().parent
PUBLIC_PATHS = ("/login", "/health", "/static")  # everything else needs a session or a token


def _install_api_only_auth(app: FastAPI) -> None:
    """The API-only server has no /login page: whatever the path and whoever asks (a
    browser included), a request without a valid session or token answers 401 as a
    problem+json, never a redirect to a page that this server does not serve."""

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _exc: NotAuthenticated) -> Response:
        return problems.problem(request, 401, "authentication required (Bearer token)",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


def create_app(
    db_url: str | None = None, *, max_upload_bytes: int | None = None, api_only: bool = False
) -> FastAPI:
    """The application on `db_url` (migrated on creation).

    `api_only`: only /api/v1, /openapi.json and /health (no pages, no static files): the
    process serving integrations (`encours serve --api-only`), so that their order checks
    never wait behind the page renders of the main process.
    """
    url = resolve_url(db_url)
    get_engine(url)  # applies migrations now rather than on the first request
    app = FastAPI(
        title="encours", version=__version__,
        description="Receivables and credit risk. Authentication: `Authorization: Bearer "
        "<token>` (`encours users token create NAME --role ROLE`) or a session cookie.",
        docs_url=None, redoc_url=None, openapi_url=None,
    )  # fmt: skip
    app.state.db_url = url
    app.state.signer = Signer(secret_key())
    app.state.templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    problems.install(app)
    if api_only:
        _install_api_only_auth(app)
    app.include_router(api_router)
    from encours.web.api import collections as api_collections
    from encours.web.api import order_check as api_order_check
    from encours.web.api import risk as api_risk

    for extra in (api_order_check, api_collections, api_risk):
        app.include_router(extra.router)
    if not api_only:
        from encours.web.pages import (
            alerts,
            customer_actions,
            dunning,
            limits,
            onboarding,
            settings,
            worklist,
        )

        app.include_router(pages_router)
        for page in (worklist, dunning, customer_actions, alerts, onboarding, limits, settings):
            app.include_router(page.router)
        app.include_router(__import__("encours.web.pages.statements", fromlist=["_"]).router)
        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_principal: PrincipalDep) -> JSONResponse:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)  # fmt: skip
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return JSONResponse(app.openapi_schema)

    app.add_middleware(LimitsAndHeadersMiddleware, max_body=max_upload_bytes or MAX_UPLOAD_BYTES)
    return app
