"""Pages: login, portfolio, customers, customer, imports, audit, users admin, API docs."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from encours.imports.load import ImportRejected
from encours.services.imports import import_file, parse_file
from encours.store.db import unit_of_work
from encours.web import accounts, charts, queries, uploads
from encours.web.accounts import AccountError, Principal
from encours.web.deps import (
    AsOf,
    DbUrl,
    csrf_protect,
    language,
    render,
    require,
)
from encours.web.formatting import Formatter, gettext_for
from encours.web.roles import ROLES
from encours.web.security import CSRF_COOKIE, SESSION_COOKIE, new_csrf_token, set_cookie

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)

Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
# "" is "all classes" (the empty option of the filter form)
RiskClass = Annotated[str | None, Query(alias="class", pattern="^[A-E]?$")]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/portfolio"


def _partial(request: Request, target: str) -> bool:
    return (
        request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == target
    )


# --- login / logout ------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: Text = None) -> HTMLResponse:  # noqa: A002
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login(
    request: Request,
    url: DbUrl,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=500)] = "/portfolio",  # noqa: A002
) -> Response:
    _ = gettext_for(language(request))
    ip = request.client.host if request.client else "?"
    with unit_of_work(url) as conn:
        if accounts.login_blocked(conn, username.strip()[:100], ip):
            return render(request, "login.html", {"next": _safe_next(next), "error": _(
                "Too many failed attempts: try again in a few minutes.")}, 429)  # fmt: skip
        principal = accounts.authenticate(conn, username, password, ip)
    if principal is None:
        return render(request, "login.html", {"next": _safe_next(next),
                      "error": _("Unknown user or wrong password.")}, 401)  # fmt: skip
    response = _see_other(_safe_next(next))
    cookie = request.app.state.signer.dump_session(principal.user_id, principal.session_version,
                                                   new_csrf_token())  # fmt: skip
    from encours.web.security import SESSION_MAX_AGE

    set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_MAX_AGE)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(_principal: Annotated[Principal, Depends(require("portfolio.view"))]) -> Response:
    response = _see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(_principal: Annotated[Principal, Depends(require("portfolio.view"))]) -> Response:
    return _see_other("/portfolio")


# --- portfolio -----------------------------------------------------------------------------


def _trend_points(points: list, fmt: Formatter, kind: str, currency: str) -> list:
    out = []
    for day, value in points:
        if kind == "money":
            out.append((fmt.month(day), None if value is None else float(value),
                        fmt.money(value, currency, short=True)))  # fmt: skip
        elif kind == "share":
            out.append((fmt.month(day), None if value is None else value * 100,
                        fmt.percent(value)))  # fmt: skip
        else:
            v = None if value is None else float(value)
            out.append((fmt.month(day), v, fmt.number(v)))
    return out


@router.get("/portfolio")
def portfolio(
    request: Request,
    principal: Annotated[Principal, Depends(require("portfolio.view"))],
    url: DbUrl,
    as_of: AsOf,
    segment: Text = None,
    owner: Text = None,
    country: Text = None,
    risk_class: RiskClass = None,
) -> HTMLResponse:
    fmt = Formatter(language(request))
    _ = gettext_for(fmt.lang)
    filters = queries.Filters(segment=segment, owner=owner, country=country,
                              risk_class=risk_class or None)  # fmt: skip
    data = queries.dashboard(url, as_of, principal, filters)
    ctx: dict = {"data": data, "filters": filters, "as_of": as_of,
                 "risk_classes": queries.RISK_CLASSES}  # fmt: skip
    if data["totals"]:
        t, cur = data["totals"], data["currency"]
        items = [(_("not due"), t["not_due_minor"], fmt.money(t["not_due_minor"], cur, True))] + [
            (b.label, t[f"{b.key}_minor"], fmt.money(t[f"{b.key}_minor"], cur, True))
            for b in data["buckets"]
        ]  # fmt: skip
        ctx["aging_chart"] = charts.aging_bars(items, _("Aging of open invoices"))
        tr = data["trends"]
        ctx["trend_charts"] = {
            "outstanding": charts.trend_line(_trend_points(tr["outstanding"], fmt, "money", cur),
                                             _("Total outstanding, 12 months")),
            "overdue_share": charts.trend_line(_trend_points(tr["overdue_share"], fmt, "share",
                                               cur), _("Overdue share, 12 months")),
            "dso": charts.trend_line(_trend_points(tr["dso"], fmt, "days", cur),
                                     _("DSO, 12 months")),
            "cei": charts.trend_line(_trend_points(tr["cei"], fmt, "days", cur),
                                     _("CEI, 12 months")),
        }  # fmt: skip
        open_total = t["invoices_open_minor"] or 0
        ctx["overdue_share"] = (t["overdue_minor"] / open_total) if open_total else None
        from encours.web.pages.alerts import risk_tiles

        ctx["risk"] = risk_tiles(request, url, as_of, principal, filters, cur)
    template = "_portfolio_body.html" if _partial(request, "portfolio-body") else "portfolio.html"
    return render(request, template, ctx)


# --- customers -----------------------------------------------------------------------------


@router.get("/customers")
def customers(
    request: Request,
    principal: Annotated[Principal, Depends(require("customers.view"))],
    url: DbUrl,
    as_of: AsOf,
    q: Text = None,
    segment: Text = None,
    owner: Text = None,
    country: Text = None,
    risk_class: RiskClass = None,
    page: PageNo = 1,
) -> HTMLResponse:
    filters = queries.Filters(segment=segment, owner=owner, country=country, q=q,
                              risk_class=risk_class or None)  # fmt: skip
    frame, total = queries.customer_list(url, as_of, principal, filters, page=page, per_page=50)
    params = {k: v for k, v in (("q", q), ("segment", segment), ("owner", owner),
                                ("country", country), ("class", risk_class)) if v}  # fmt: skip
    ctx = {
        "rows": frame.to_dicts(), "total": total, "page": page, "pages": max(1, -(-total // 50)),
        "filters": filters, "as_of": as_of, "query": urlencode(params),
        "options": queries.filter_options(queries.portfolio_data(url, as_of), principal),
        "risk_classes": queries.RISK_CLASSES,
    }  # fmt: skip
    template = "_customers_table.html" if _partial(request, "customer-table") else "customers.html"
    return render(request, template, ctx)


@router.get("/customers/{code}")
def customer(
    request: Request,
    code: Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")],
    principal: Annotated[Principal, Depends(require("customers.view"))],
    url: DbUrl,
    as_of: AsOf,
) -> HTMLResponse:
    detail = queries.customer_detail(url, code, as_of, principal)
    if detail is None:
        raise HTTPException(status_code=404, detail=code)
    fmt = Formatter(language(request))
    _ = gettext_for(fmt.lang)
    c = detail["customer"]
    cur = c["currency"]
    position = next((p for p in detail["positions"] if p["currency"] == cur),
                    detail["positions"][0] if detail["positions"] else None)  # fmt: skip
    ctx: dict = {"d": detail, "c": c, "position": position, "as_of": as_of,
                 "invoices": detail["open_invoices"].to_dicts()}  # fmt: skip
    if position:
        pc = position["currency"]
        items = [(_("not due"), position["not_due_minor"],
                  fmt.money(position["not_due_minor"], pc, True))] + [
            (b.label, position[f"{b.key}_minor"], fmt.money(position[f"{b.key}_minor"], pc, True))
            for b in detail["buckets"]
        ]  # fmt: skip
        ctx["aging_chart"] = charts.aging_bars(items, _("Aging of open invoices"))
        limit = c["credit_limit_minor"]
        used = position["limit_used"]
        caption = (_("No credit limit") if not limit else _("{exposure} of {limit} ({share})")
                   .format(exposure=fmt.money(position["exposure_minor"], pc),
                           limit=fmt.money(limit, cur), share=fmt.percent(used)))  # fmt: skip
        ctx["gauge"] = charts.limit_gauge(used, _("Exposure against the credit limit"), caption)
    if detail["history"]:
        points = [(fmt.month(d), float(b), fmt.money(b, cur, True)) for d, b, _o in
                  detail["history"]]  # fmt: skip
        ctx["history_chart"] = charts.trend_line(points, _("Balance, 12 months"), width=420)
    behaviour = detail.get("behaviour") or []
    if any(m["settled"] for m in behaviour):
        ctx["behaviour"] = behaviour
        ctx["behaviour_chart"] = charts.trend_line(
            [(fmt.month(m["month"]), m["avg_days_late"],
              _("{days} days late on average, {late} of {count} invoices late").format(
                  days=fmt.number(m["avg_days_late"]), late=fmt.percent(m["late_share"]),
                  count=m["settled"]) if m["settled"] else "—")
             for m in behaviour],
            _("Average days late of the invoices settled each month"), width=420,
        )  # fmt: skip
    return render(request, "customer.html", ctx)


@router.post("/customers/{code}/limit")
def customer_limit(
    request: Request,
    code: Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")],
    principal: Annotated[Principal, Depends(require("customers.edit_limit"))],
    url: DbUrl,
    as_of: AsOf,
    credit_limit: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    no_limit: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """A limit change is never applied here: it becomes a request that another credit
    manager approves on /limits (four-eyes rule of `risk.limits`)."""
    from encours.risk.limits import LimitError
    from encours.web.pages import limits

    _ = gettext_for(language(request))
    try:  # "No limit" ticked: a request to remove the limit
        amount = None if no_limit == "1" else limits.parse_amount(credit_limit)
    except ValueError as exc:
        raise HTTPException(status_code=422,
                            detail=_("The amount must be a positive number.")) from exc  # fmt: skip
    try:
        request_id = limits.create_request(url, principal, code, amount, reason.strip(), as_of)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=code) from exc
    except LimitError as exc:
        return limits._page(request, url, code=409, error=exc.translated(_))  # noqa: SLF001
    text = _("Limit-change request #{id} created: another credit manager approves it here.")
    notice = text.format(id=request_id)
    return limits._page(request, url, notice=notice)  # noqa: SLF001


# --- imports -------------------------------------------------------------------------------


@router.get("/imports")
def imports_page(
    request: Request, _principal: Annotated[Principal, Depends(require("imports.run"))]
) -> HTMLResponse:
    return render(request, "imports.html", {"kinds": uploads.KINDS, "stage": "upload"})


@router.post("/imports")
def imports_upload(
    request: Request,
    principal: Annotated[Principal, Depends(require("imports.run"))],
    kind: Annotated[str, Form(max_length=20)],
    file: Annotated[UploadFile, File()],
) -> HTMLResponse:
    try:
        upload_id, path = uploads.save(file.file, file.filename or "", kind, principal.actor)
    except uploads.UploadError as exc:
        error = exc.translated(gettext_for(language(request)))
        return render(request, "imports.html", {"kinds": uploads.KINDS, "stage": "upload",
                                                "error": error}, 422)  # fmt: skip
    batch = parse_file(path, kind)  # type: ignore[arg-type]
    counts = {name: (0 if frame is None else frame.height) for name, frame in
              (("customers", batch.customers), ("documents", batch.documents),
               ("payments", batch.payments))}  # fmt: skip
    if batch.errors:
        uploads.discard(upload_id)
    ctx = {"kinds": uploads.KINDS, "stage": "preview", "upload_id": upload_id, "kind": kind,
           "filename": file.filename, "errors": batch.errors[:500],
           "error_count": len(batch.errors), "counts": counts}  # fmt: skip
    return render(request, "imports.html", ctx, 422 if batch.errors else 200)


@router.post("/imports/{upload_id}/confirm")
def imports_confirm(
    request: Request,
    upload_id: str,
    principal: Annotated[Principal, Depends(require("imports.run"))],
    url: DbUrl,
) -> HTMLResponse:
    try:
        meta, path = uploads.load(upload_id, principal.actor)
    except uploads.UploadError as exc:
        detail = exc.translated(gettext_for(language(request)))
        raise HTTPException(status_code=404, detail=detail) from exc
    try:
        report = import_file(path, meta["kind"], db_url=url, actor=principal.actor)
    except ImportRejected as exc:
        ctx = {"kinds": uploads.KINDS, "stage": "preview", "kind": meta["kind"],
               "filename": meta["name"], "errors": exc.errors[:500],
               "error_count": len(exc.errors), "counts": {}}  # fmt: skip
        return render(request, "imports.html", ctx, 422)
    finally:
        uploads.discard(upload_id)
    return render(
        request,
        "imports.html",
        {"kinds": uploads.KINDS, "stage": "done", "report": report, "filename": meta["name"]},
    )


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit")
def audit(
    request: Request,
    _principal: Annotated[Principal, Depends(require("audit.view"))],
    url: DbUrl,
    entity: Text = None,
    actor: Text = None,
    action: Text = None,
    key: Text = None,
    page: PageNo = 1,
) -> HTMLResponse:
    rows, total = queries.audit_page(url, entity=entity, actor=actor, action=action, key=key,
                                     page=page, per_page=50)  # fmt: skip
    params = {k: v for k, v in (("entity", entity), ("actor", actor), ("action", action),
                                ("key", key)) if v}  # fmt: skip
    for row in rows:
        before, after = row["before"] or {}, row["after"] or {}
        keys = sorted(set(before) | set(after))
        row["changes"] = [(k, before.get(k), after.get(k)) for k in keys
                          if before.get(k) != after.get(k) or not before]  # fmt: skip
    ctx = {"rows": rows, "total": total, "page": page, "pages": max(1, -(-total // 50)),
           "f": {"entity": entity, "actor": actor, "action": action, "key": key},
           "facets": queries.audit_facets(url), "query": urlencode(params)}  # fmt: skip
    return render(request, "audit.html", ctx)


# --- users admin ---------------------------------------------------------------------------


def _users_page(
    request: Request, url: str | None, status: int = 200, **extra: object
) -> HTMLResponse:
    with unit_of_work(url) as conn:
        users = accounts.list_users(conn)
        tokens = accounts.list_tokens(conn)
    return render(request, "users.html", {"users": users, "tokens": tokens, "roles": ROLES,
                                          **extra}, status)  # fmt: skip


@router.get("/admin/users")
def users_page(
    request: Request, _principal: Annotated[Principal, Depends(require("users.manage"))],
    url: DbUrl,
) -> HTMLResponse:  # fmt: skip
    return _users_page(request, url)


@router.post("/admin/users")
def users_create(
    request: Request,
    principal: Annotated[Principal, Depends(require("users.manage"))],
    url: DbUrl,
    username: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=30)],
    password: Annotated[str, Form(max_length=1000)],
    owner_name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        with unit_of_work(url) as conn:
            accounts.create_user(conn, username, role, password, actor=principal.actor,
                                 owner_name=owner_name)  # fmt: skip
    except AccountError as exc:
        return _users_page(request, url, 422, error=exc.translated(gettext_for(language(request))))
    return _see_other("/admin/users")


@router.post("/admin/users/{user_id}")
def users_update(
    request: Request,
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: Annotated[Principal, Depends(require("users.manage"))],
    url: DbUrl,
    role: Annotated[str | None, Form(max_length=30)] = None,
    active: Annotated[str | None, Form(max_length=5)] = None,
    owner_name: Annotated[str | None, Form(max_length=100)] = None,
    password: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    if user_id == principal.user_id and (active == "0" or (role and role != "admin")):
        _ = gettext_for(language(request))
        return _users_page(request, url, 422, error=_("You cannot demote or disable yourself."))
    try:
        with unit_of_work(url) as conn:
            accounts.update_user(
                conn, user_id, actor=principal.actor, role=role or None,
                active=None if active is None else active == "1",
                owner_name=owner_name, password=password or None,
            )  # fmt: skip
    except AccountError as exc:
        return _users_page(request, url, 422, error=exc.translated(gettext_for(language(request))))
    return _see_other("/admin/users")


@router.post("/admin/tokens")
def tokens_create(
    request: Request,
    principal: Annotated[Principal, Depends(require("users.manage"))],
    url: DbUrl,
    name: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=30)],
    owner_name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        with unit_of_work(url) as conn:
            token = accounts.create_token(conn, name, role, actor=principal.actor,
                                          owner_name=owner_name)  # fmt: skip
    except AccountError as exc:
        return _users_page(request, url, 422, error=exc.translated(gettext_for(language(request))))
    return _users_page(request, url, new_token=token, new_token_name=name)


@router.post("/admin/tokens/{name}/revoke")
def tokens_revoke(
    request: Request,
    name: str,
    principal: Annotated[Principal, Depends(require("users.manage"))],
    url: DbUrl,
) -> Response:
    try:
        with unit_of_work(url) as conn:
            accounts.revoke_token(conn, name, actor=principal.actor)
    except AccountError as exc:
        detail = exc.translated(gettext_for(language(request)))
        raise HTTPException(status_code=404, detail=detail) from exc
    return _see_other("/admin/users")


# --- API docs (vendored Swagger UI) ----------------------------------------------------------


@router.get("/docs")
def docs(
    request: Request, _principal: Annotated[Principal, Depends(require("portfolio.view"))]
) -> HTMLResponse:
    response = render(request, "docs.html")
    # Swagger UI sets inline styles: allow those on this page only (scripts stay 'self').
    response.headers["content-security-policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; object-src 'none'; frame-ancestors 'none'"
    )
    return response


__all__ = ["router"]
