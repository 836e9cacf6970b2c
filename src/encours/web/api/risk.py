"""/api/v1 of the risk module: alerts (list, acknowledge), credit-limit requests (list,
request, approve, reject), onboarding. Errors are application/problem+json: 403 for a role
that may not, 404 unknown, 409 a state that forbids it (already decided, four-eyes rule,
already acknowledged), 422 invalid input."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from encours.money import from_minor
from encours.risk.limits import LimitError
from encours.risk.onboarding import CHECKLIST_ITEMS, OnboardingError
from encours.web.accounts import Principal
from encours.web.deps import DAY_PATTERN, AsOf, DbUrl, csrf_protect, require
from encours.web.pages import alerts as alerts_mod
from encours.web.pages import limits as limits_mod
from encours.web.pages.onboarding import onboard
from encours.web.problems import PROBLEM_RESPONSES, problem

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {**PROBLEM_RESPONSES[422], "description": "Conflict"}
}
router = APIRouter(
    prefix="/api/v1", tags=["risk"], responses=PROBLEM_RESPONSES,
    dependencies=[Depends(csrf_protect)],
)  # fmt: skip

NoNul = Query(max_length=200, pattern=r"^[^\x00]*$")
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=500)]
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]  # INTEGER ids (4 bytes on PostgreSQL)


# --- schemas ---------------------------------------------------------------------------------


class AlertOut(BaseModel):
    id: int
    customer_code: str
    customer_name: str
    kind: str
    severity: str | None = None
    status: str
    assignee: str | None = None
    title: str | None = None
    details: dict | None = None
    as_of: dt.date | None = None
    last_seen: dt.date | None = None
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    comment: str | None = None


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    page: int
    per_page: int


class Acknowledge(BaseModel):
    comment: str = Field(min_length=1, max_length=2000, description="Why / what was done")


class LimitRequestOut(BaseModel):
    id: int
    customer_code: str
    currency: str
    current: str | None = Field(None, description="Decimal string, customer's currency")
    requested: str | None = Field(None, description="Decimal string; null: no limit")
    recommended: str | None = None
    reason: str | None = None
    status: str
    requested_by: str
    requested_at: dt.datetime | None = None
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    decision_note: str | None = None


class LimitRequestList(BaseModel):
    items: list[LimitRequestOut]


class LimitRequestIn(BaseModel):
    customer: str = Field(min_length=1, max_length=64)
    amount: str | None = Field(
        max_length=40, description="Decimal string, e.g. 25000.00; null: no limit"
    )
    reason: str | None = Field(None, max_length=500)


class Decision(BaseModel):
    note: str | None = Field(None, max_length=500)


class OnboardingIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    siren: str | None = Field(None, max_length=20)
    siret: str | None = Field(None, max_length=30)
    vat_number: str | None = Field(None, max_length=30)
    legal_form: str | None = Field(None, max_length=40)
    created: dt.date | None = Field(None, description="Date of creation of the company")
    sector: str | None = Field(None, max_length=60, description="NAF code or free text")
    country: str = Field("FR", max_length=10)
    address_line1: str | None = Field(None, max_length=200, description="Street address")
    address_line2: str | None = Field(None, max_length=200, description="Address complement")
    postal_code: str | None = Field(None, max_length=20, description="Five digits in France")
    city: str | None = Field(None, max_length=100)
    currency: str = Field("EUR", max_length=10)
    payment_terms: str = Field("30 days net", max_length=60)
    checklist: list[str] = Field(
        default_factory=list,
        max_length=len(CHECKLIST_ITEMS),
        description=f"Items among {', '.join(CHECKLIST_ITEMS)}",
    )
    as_of: dt.date | None = Field(None, json_schema_extra={"pattern": DAY_PATTERN})


class OnboardingOut(BaseModel):
    customer: str
    risk_class: str
    credit_limit: str
    currency: str
    review_date: dt.date
    deposit_required: bool
    prepayment_required: bool
    reasons: list[str]


# --- alerts ----------------------------------------------------------------------------------


def _alert(row: dict) -> AlertOut:
    at = row.get("acknowledged_at")
    details = row["details"] if isinstance(row["details"], dict) else None
    return AlertOut(**{**row, "details": details, "acknowledged_at": _utc(at)})


@router.get("/alerts", response_model=AlertPage, summary="Alerts (credit managers: all; "
            "collectors and sales: theirs)")  # fmt: skip
def list_alerts(
    principal: Annotated[Principal, Depends(require("alerts.view"))],
    url: DbUrl,
    status: Annotated[str, Query(pattern="^(open|acknowledged|closed|all)$")] = "open",
    severity: Annotated[str | None, NoNul] = None,
    kind: Annotated[str | None, NoNul] = None,
    customer: Annotated[str | None, NoNul] = None,
    assignee: Annotated[str | None, NoNul] = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> AlertPage:
    rows, total = alerts_mod.list_alerts(
        url, principal, status=None if status == "all" else status, severity=severity,
        kind=kind, customer=customer, assignee=assignee, page=page, per_page=per_page,
    )  # fmt: skip
    return AlertPage(items=[_alert(r) for r in rows], total=total, page=page, per_page=per_page)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             summary="Acknowledge an open alert with a comment", responses=CONFLICT)  # fmt: skip
def acknowledge(
    request: Request,
    alert_id: Id,
    body: Acknowledge,
    principal: Annotated[Principal, Depends(require("alerts.view"))],
    url: DbUrl,
) -> AlertOut | JSONResponse:
    try:
        row = alerts_mod.acknowledge_alert(url, alert_id, principal, body.comment)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=f"no alert #{alert_id}") from exc
    except alerts_mod.AlertError as exc:
        status = 422 if not body.comment.strip() else 409
        return problem(request, status, str(exc))
    return _alert(row)


# --- limit requests --------------------------------------------------------------------------


def _m(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(from_minor(int(minor), currency))


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value else None


def _request_out(r: dict) -> LimitRequestOut:
    cur = r["currency"]
    return LimitRequestOut(
        id=r["id"], customer_code=r["code"], currency=cur, current=_m(r["current_minor"], cur),
        requested=_m(r["requested_minor"], cur),
        recommended=_m(r["recommended_minor"], cur), reason=r["reason"], status=r["status"],
        requested_by=r["requested_by"], requested_at=_utc(r["requested_at"]),
        decided_by=r["decided_by"], decided_at=_utc(r["decided_at"]),
        decision_note=r["decision_note"],
    )  # fmt: skip


def _one(url: str | None, request_id: int) -> LimitRequestOut:
    rows = [r for r in limits_mod.requests_of(url, None) if r["id"] == request_id]
    return _request_out(rows[0])


@router.get("/limit-requests", response_model=LimitRequestList,
            summary="Credit-limit requests (newest first, at most 500)")  # fmt: skip
def list_limit_requests(
    _principal: Annotated[Principal, Depends(require("limits.view"))],
    url: DbUrl,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|all)$")] = "pending",
) -> LimitRequestList:
    rows = limits_mod.requests_of(url, None if status == "all" else status)
    return LimitRequestList(items=[_request_out(r) for r in rows])


@router.post("/limit-requests", response_model=LimitRequestOut, status_code=201,
             summary="Ask for a new credit limit (pending until another credit manager "
             "decides)", responses=CONFLICT)  # fmt: skip
def create_limit_request(
    request: Request,
    body: LimitRequestIn,
    principal: Annotated[Principal, Depends(require("limits.request"))],
    url: DbUrl,
    as_of: AsOf,
) -> LimitRequestOut | JSONResponse:
    try:
        amount = None if body.amount is None else limits_mod.parse_amount(body.amount)
    except ValueError:
        return problem(request, 422, f"amount {body.amount!r}: a positive decimal expected")
    try:
        request_id = limits_mod.create_request(url, principal, body.customer.strip(), amount,
                                               (body.reason or "").strip(), as_of)  # fmt: skip
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except LimitError as exc:
        return problem(request, 409, str(exc))
    return _one(url, request_id)


def _decide(request: Request, url: str | None, principal: Principal, request_id: int,
            approve: bool, body: Decision | None) -> LimitRequestOut | JSONResponse:  # fmt: skip
    if not limits_mod.request_exists(url, request_id):
        raise HTTPException(status_code=404, detail=f"no limit request #{request_id}")
    try:
        limits_mod.decide(url, principal, request_id, approve, (body.note if body else None))
    except LimitError as exc:  # already decided, or the four-eyes rule
        return problem(request, 409, str(exc))
    return _one(url, request_id)


@router.post("/limit-requests/{request_id}/approve", response_model=LimitRequestOut,
             summary="Approve: the customer's limit becomes the requested one",
             responses=CONFLICT)  # fmt: skip
def approve(
    request: Request,
    request_id: Id,
    principal: Annotated[Principal, Depends(require("limits.decide"))],
    url: DbUrl,
    body: Annotated[Decision | None, Body()] = None,
) -> LimitRequestOut | JSONResponse:
    return _decide(request, url, principal, request_id, True, body)


@router.post("/limit-requests/{request_id}/reject", response_model=LimitRequestOut,
             summary="Reject a pending request", responses=CONFLICT)  # fmt: skip
def reject(
    request: Request,
    request_id: Id,
    principal: Annotated[Principal, Depends(require("limits.decide"))],
    url: DbUrl,
    body: Annotated[Decision | None, Body()] = None,
) -> LimitRequestOut | JSONResponse:
    return _decide(request, url, principal, request_id, False, body)


# --- onboarding ------------------------------------------------------------------------------


@router.post("/onboarding", response_model=OnboardingOut, status_code=201,
             summary="Onboard a new customer: initial risk class and credit limit")  # fmt: skip
def post_onboarding(
    request: Request,
    body: OnboardingIn,
    principal: Annotated[Principal, Depends(require("onboarding.run"))],
    url: DbUrl,
) -> OnboardingOut | JSONResponse:
    values = body.model_dump(exclude={"checklist", "as_of"})
    try:
        result = onboard(url, principal, values, body.checklist, body.as_of)
    except OnboardingError as exc:
        return problem(request, 422, "; ".join(exc.problems),
                       [{"msg": p} for p in exc.problems])  # fmt: skip
    return OnboardingOut(**{**result.as_dict(), "review_date": result.review_date})


__all__ = ["router"]
