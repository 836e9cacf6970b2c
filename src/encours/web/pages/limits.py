"""Credit-limit changes: requests, and their approval or rejection by a credit manager (or
an admin). The risk module applies the four-eyes rule (the requester cannot decide) and
audits every step; its refusals are shown to the user, nothing is changed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from encours.risk.limits import (
    REQUESTS,
    LimitError,
    approve_limit,
    list_requests,
    reject_limit,
    request_limit,
)
from encours.store.db import unit_of_work
from encours.web import queries
from encours.web.accounts import Principal
from encours.web.deps import AsOf, DbUrl, csrf_protect, language, render, require
from encours.web.formatting import gettext_for
from encours.web.pages import alerts as _risk_permissions  # noqa: F401  (registers them)

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)
STATUSES = ("pending", "approved", "rejected")


def parse_amount(value: str) -> Decimal:
    """A non-negative amount as typed ("12 345,50", "12345.5"); ValueError otherwise."""
    text = value.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(value) from exc
    if not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 15:
        raise ValueError(value)
    return amount


def requests_of(db_url: str | None, status: str | None) -> list[dict]:
    with unit_of_work(db_url) as conn:
        rows = list_requests(conn, status)
    return sorted(rows, key=lambda r: r["id"], reverse=True)[:500]


def create_request(
    db_url: str | None, principal: Principal, code: str, amount: Decimal | None,
    reason: str | None,
    as_of: dt.date,
) -> int:  # fmt: skip
    """LookupError for an unknown customer, LimitError when the risk module refuses."""
    with unit_of_work(db_url) as conn:
        if queries.find_customer(conn, code, principal) is None:  # sales: own accounts only
            raise LookupError(code)
        return request_limit(conn, code, amount, actor=principal.actor, as_of=as_of,
                             reason=reason or None)  # fmt: skip


def decide(
    db_url: str | None, principal: Principal, request_id: int, approve: bool, note: str | None
) -> None:
    """Approve or reject; LimitError (unknown, already decided, four-eyes) changes nothing."""
    with unit_of_work(db_url) as conn:
        if approve:
            approve_limit(conn, request_id, actor=principal.actor, note=note or None)
        else:
            reject_limit(conn, request_id, actor=principal.actor, note=note or None)


def request_exists(db_url: str | None, request_id: int) -> bool:
    with unit_of_work(db_url) as conn:
        return conn.execute(select(REQUESTS.c.id).where(REQUESTS.c.id == request_id)).first() \
            is not None  # fmt: skip


def _page(
    request: Request, url: str | None, status: str = "pending", code: int = 200,
    **extra: object,
) -> HTMLResponse:  # fmt: skip
    extra.setdefault("values", {})
    rows = requests_of(url, None if status == "all" else status)
    return render(request, "limits.html", {"rows": rows, "status": status, "statuses": STATUSES,
                                           **extra}, code)  # fmt: skip


@router.get("/limits")
def limits_page(
    request: Request,
    _principal: Annotated[Principal, Depends(require("limits.view"))],
    url: DbUrl,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|all)$")] = "pending",
    customer: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
) -> HTMLResponse:
    return _page(request, url, status, values={"customer": customer or ""})


@router.post("/limits")
def limits_request(
    request: Request,
    principal: Annotated[Principal, Depends(require("limits.request"))],
    url: DbUrl,
    as_of: AsOf,
    customer: Annotated[str, Form(max_length=64)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _ = gettext_for(language(request))
    values = {"customer": customer, "amount": amount, "reason": reason}
    try:
        value = parse_amount(amount)
    except ValueError:
        return _page(request, url, code=422, values=values,
                     error=_("The amount must be a positive number."))  # fmt: skip
    try:
        create_request(url, principal, customer.strip(), value, reason.strip(), as_of)
    except LookupError:
        return _page(request, url, code=422, values=values,
                     error=_("Unknown customer {code}").format(code=customer))  # fmt: skip
    except LimitError as exc:
        return _page(request, url, code=409, values=values, error=exc.translated(_))
    return RedirectResponse("/limits", status_code=303)


def _decision(
    request: Request, principal: Principal, url: str | None, request_id: int, approve: bool,
    note: str,
) -> Response:  # fmt: skip
    try:
        decide(url, principal, request_id, approve, note.strip())
    except LimitError as exc:
        message = exc.translated(gettext_for(language(request)))
        if not request_exists(url, request_id):
            raise HTTPException(status_code=404, detail=message) from exc
        return _page(request, url, code=409, values={}, error=message)
    return RedirectResponse("/limits", status_code=303)


RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/limits/{request_id}/approve")
def limits_approve(
    request: Request,
    request_id: RequestId,
    principal: Annotated[Principal, Depends(require("limits.decide"))],
    url: DbUrl,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _decision(request, principal, url, request_id, True, note)


@router.post("/limits/{request_id}/reject")
def limits_reject(
    request: Request,
    request_id: RequestId,
    principal: Annotated[Principal, Depends(require("limits.decide"))],
    url: DbUrl,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _decision(request, principal, url, request_id, False, note)


__all__ = ["create_request", "decide", "parse_amount", "requests_of", "router"]
