"""/api/v1 for collections: worklist, dunning runs (plan, run, approvals, send, history),
promises and disputes. The same rules as the pages (roles, own accounts, audit)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, overload

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, func, select, true

from encours.collections import actions as coll
from encours.money import from_minor
from encours.store.db import unit_of_work
from encours.store.outbox_schema import DunningRun
from encours.web.accounts import Principal
from encours.web.deps import DAY_PATTERN, MAX_DAY, MIN_DAY, AsOf, DbUrl, csrf_protect, require
from encours.web.pages import dunning as dunning_pages
from encours.web.pages import worklist as wl
from encours.web.problems import PROBLEM_RESPONSES
from encours.web.queries import CUSTOMERS, NO_OWNER
from encours.web.roles import OWN_ACCOUNTS_ONLY

router = APIRouter(
    prefix="/api/v1", tags=["api"], responses=PROBLEM_RESPONSES,
    dependencies=[Depends(csrf_protect)],
)  # fmt: skip

NoNul = Query(max_length=200, pattern=r"^[^\x00]*$")
Day = Field(None, description="Day (YYYY-MM-DD), default today",
            json_schema_extra={"pattern": DAY_PATTERN})  # fmt: skip
Code = Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$")
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=500)]


class Paged(BaseModel):
    total: int
    page: int
    per_page: int


@overload
def _m(minor: int, currency: str) -> str: ...
@overload
def _m(minor: None, currency: str | None) -> None: ...
def _m(minor: int | None, currency: str | None) -> str | None:
    return None if minor is None or currency is None else str(from_minor(int(minor), currency))


def _day(day: dt.date | None) -> dt.date:
    day = day or dt.date.today()
    if not MIN_DAY <= day <= MAX_DAY:
        raise HTTPException(status_code=422, detail="the day must be between 1900 and 2200")
    return day


def _action(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    try:
        return fn(*args, **kwargs)
    except coll.ActionError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


# --- worklist ------------------------------------------------------------------------------


class WorklistItem(BaseModel):
    code: str
    name: str
    collector: str | None = None
    currency: str
    overdue: str
    invoices: int
    max_days_overdue: int
    p_late: float
    value_at_risk: str = Field(description="sum of open amount x p_late x days overdue")
    next_action: str = Field(description="task, promise, level or call")
    next_detail: str | None = None


class Worklist(BaseModel):
    as_of: dt.date
    collector: str | None = None
    model: str | None = Field(None, description="kind of the payment model used, if any")
    items: list[WorklistItem]


@router.get("/worklist", response_model=Worklist, summary="Accounts by value at risk")
def get_worklist(
    principal: Annotated[Principal, Depends(require("worklist.view"))],
    url: DbUrl,
    as_of: AsOf,
    collector: Annotated[str | None, NoNul] = None,
) -> Worklist:
    who = wl.collector_of(principal, collector)
    data = wl.worklist(url, as_of, principal, who)
    items = []
    for r in data["rows"].iter_rows(named=True):
        promised = r["promised_date"].isoformat() if r["promised_date"] else None
        detail = {"task": r["task_note"], "level": r["planned_level"],
                  "promise": promised}.get(r["next_action"])  # fmt: skip
        items.append(WorklistItem(
            code=r["code"], name=r["name"], collector=r["collector"], currency=r["currency"],
            overdue=_m(r["overdue_minor"], r["currency"]), invoices=r["invoices"],
            max_days_overdue=r["max_days"], p_late=round(float(r["p_late"]), 4),
            value_at_risk=_m(round(r["value_at_risk"]), r["currency"]),
            next_action=r["next_action"], next_detail=detail,
        ))  # fmt: skip
    model = data["model"].model_kind if data["model"].frame is not None else None
    return Worklist(as_of=as_of, collector=who, model=model, items=items)


# --- dunning -------------------------------------------------------------------------------


class PlannedMessage(BaseModel):
    customer: str
    level: str
    channel: str
    status: str
    requires_approval_by: str | None = None
    total_due: str
    currency: str
    invoices: int


class DunningPlan(BaseModel):
    as_of: dt.date
    messages: list[PlannedMessage]
    render_errors: int
    skipped: dict[str, int]


@router.get("/dunning/plan", response_model=DunningPlan, summary="The run of the day, planned")
def get_plan(
    principal: Annotated[Principal, Depends(require("dunning.view"))], url: DbUrl, as_of: AsOf
) -> DunningPlan:
    overview = dunning_pages.dunning_overview(url, as_of, principal)
    planned = wl.planned_run(url, as_of)
    return DunningPlan(as_of=as_of, render_errors=len(planned.errors), skipped=planned.skipped,
                       messages=[_planned(p) for p in overview["plan"]])  # fmt: skip


def _planned(p: dict) -> PlannedMessage:
    return PlannedMessage(
        customer=p["customer_code"], level=p["level_code"], channel=p["channel"],
        status=p["status"], requires_approval_by=p["requires_approval_by"],
        total_due=_m(p["total_due_minor"], p["currency"]) or "0", currency=p["currency"],
        invoices=p["invoice_count"] or 0,
    )  # fmt: skip


class RunIn(BaseModel):
    as_of: dt.date | None = Day
    dry_run: bool = False


class RunOut(BaseModel):
    as_of: dt.date
    dry_run: bool
    run_id: int | None = Field(None, description="None on a dry run")
    messages: int = Field(description="messages created (planned on a dry run)")
    drafts: int = Field(description="messages waiting for an approval")
    by_level: dict[str, int] = Field(description="messages per dunning level")
    errors: int = Field(description="messages that could not be rendered")
    skipped: dict[str, int] = Field(default_factory=dict,
                                    description="customers left out, per reason")  # fmt: skip
    promises: dict[str, int] = Field(default_factory=dict, description="kept / broken")
    plans: dict[str, int] = Field(default_factory=dict, description="completed / broken")
    tasks_created: int = 0
    warnings: list[str] = Field(default_factory=list)


@router.post("/dunning/runs", response_model=RunOut, summary="Run the dunning of a day")
def post_run(
    body: RunIn, principal: Annotated[Principal, Depends(require("dunning.run"))], url: DbUrl
) -> RunOut:
    from encours.collections.engine import run_dunning

    day = _day(body.as_of)
    with unit_of_work(url) as conn:
        result = run_dunning(conn, day, dry_run=body.dry_run, actor=principal.actor)
    s = result.summary()
    return RunOut(as_of=day, dry_run=body.dry_run, run_id=result.run_id, messages=s["messages"],
                  drafts=s["drafts"], by_level=s["by_level"], errors=s["errors"],
                  skipped=s["skipped"], promises=s["promises"], plans=s["plans"],
                  tasks_created=s["tasks_created"], warnings=s["warnings"])  # fmt: skip


class RunRow(BaseModel):
    id: int
    as_of: dt.date
    actor: str
    started_at: dt.datetime
    summary: dict | None = None


class RunPage(Paged):
    items: list[RunRow]


@router.get("/dunning/runs", response_model=RunPage, summary="History of the runs")
def get_runs(
    _principal: Annotated[Principal, Depends(require("dunning.view"))], url: DbUrl,
    page: Page = 1, per_page: PerPage = 50,
) -> RunPage:  # fmt: skip
    table = DunningRun.__table__
    stmt = (select(table).order_by(table.c.as_of.desc(), table.c.id.desc())
            .limit(per_page).offset((page - 1) * per_page))  # fmt: skip
    with unit_of_work(url) as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        items = [RunRow(**{**r, "started_at": r["started_at"].replace(tzinfo=dt.UTC)})
                 for r in conn.execute(stmt).mappings()]  # fmt: skip
    return RunPage(items=items, total=total, page=page, per_page=per_page)


class Message(BaseModel):
    id: int
    as_of: dt.date
    customer: str
    level: str
    channel: str
    status: str
    requires_approval_by: str | None = None
    to_address: str | None = None
    subject: str | None = None
    total_due: str | None = None
    currency: str | None = None


class MessagePage(BaseModel):
    total: int
    items: list[Message]


@router.get("/dunning/communications", response_model=MessagePage, summary="Messages")
def get_messages(
    principal: Annotated[Principal, Depends(require("dunning.view"))],
    url: DbUrl,
    status: Annotated[
        str | None, Query(pattern="^(draft|approved|sending|sent|failed|cancelled)$")
    ] = None,
    customer: Annotated[str | None, NoNul] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MessagePage:
    with unit_of_work(url) as conn:
        frame = coll.list_communications(conn, status=status, customer_code=customer)
    frame = dunning_pages._own(principal, frame, url)  # noqa: SLF001
    rows = frame.slice((page - 1) * per_page, per_page).to_dicts()
    items = [Message(
        id=r["id"], as_of=r["as_of"], customer=r["customer_code"], level=r["level_code"],
        channel=r["channel"], status=r["status"], requires_approval_by=r["requires_approval_by"],
        to_address=r["to_address"], subject=r["subject"],
        total_due=_m(r["total_due_minor"], r["currency"]), currency=r["currency"],
    ) for r in rows]  # fmt: skip
    return MessagePage(total=frame.height, items=items)


class ApprovalIn(BaseModel):
    role: str | None = Field(None, pattern="^(credit_manager|sales)$",
                             description="Default: the caller's role")  # fmt: skip
    customer: str | None = Field(None, max_length=64, pattern=r"^[^\x00]*$")
    as_of: dt.date | None = Day


class ApprovalOut(BaseModel):
    approved: list[int]


@router.post("/dunning/approvals", response_model=ApprovalOut, summary="Approve drafts")
def post_approvals(
    body: ApprovalIn, principal: Annotated[Principal, Depends(require("dunning.approve"))],
    url: DbUrl,
) -> ApprovalOut:  # fmt: skip
    approved = dunning_pages.approve_drafts(url, principal, _day(body.as_of), body.role,
                                            body.customer)  # fmt: skip
    return ApprovalOut(approved=approved)


class SendIn(BaseModel):
    as_of: dt.date | None = Day


class SendFailure(BaseModel):
    id: int
    channel: str
    to: str | None = None
    error: str


class SendRetry(BaseModel):
    id: int
    to: str | None = None
    error: str
    next_attempt_at: dt.datetime


class SendOut(BaseModel):
    as_of: dt.date
    emails_sent: int
    emails_retried_later: int = Field(description="temporary error: a later run retries")
    emails_failed: int
    resent_after_interruption: int = Field(
        description="found in 'sending' (interrupted run): sent again, same Message-ID"
    )
    held_by_another_sender: int = Field(
        0, description="in 'sending' by another sender still running: left to it"
    )
    letters: int
    letter_batch: str | None = Field(None, description="the PDF batch of the letters")
    calls: int
    notes: list[str]
    failed: list[SendFailure]
    retrying: list[SendRetry]


@router.post("/dunning/send", response_model=SendOut, summary="Deliver the approved messages")
def post_send(
    body: SendIn, principal: Annotated[Principal, Depends(require("dunning.run"))], url: DbUrl
) -> SendOut:
    from encours.collections.outbox import send_pending

    report = send_pending(url, _day(body.as_of), dunning_pages.letters_dir(),
                          actor=principal.actor)  # fmt: skip
    return SendOut.model_validate(report.as_dict())


# --- promises and disputes -----------------------------------------------------------------


class PromiseIn(BaseModel):
    customer: str = Code
    promised_date: dt.date = Field(json_schema_extra={"pattern": DAY_PATTERN})
    amount: Decimal = Field(gt=0, le=Decimal("1e13"))
    note: str | None = Field(None, max_length=1000)
    as_of: dt.date | None = Day


class PromiseOut(BaseModel):
    id: int
    customer: str
    made_on: dt.date
    promised_date: dt.date
    amount: str
    currency: str
    status: str
    note: str | None = None


def _promise_out(r: dict, code: str) -> PromiseOut:
    return PromiseOut(id=r["id"], customer=code, made_on=r["made_on"],
                      promised_date=r["promised_date"], amount=_m(r["amount_minor"],
                      r["currency"]), currency=r["currency"], status=r["status"],
                      note=r["note"])  # fmt: skip


class PromisePage(Paged):
    items: list[PromiseOut]


def _visible_customers(principal: Principal, customer: str | None):  # noqa: ANN202
    """Condition on customers `CUSTOMERS` (own accounts, one code): a subquery, not a list
    of ids bound one by one."""
    cond = []
    if principal.role in OWN_ACCOUNTS_ONLY:
        cond.append(CUSTOMERS.c.account_owner == (principal.owner_name or NO_OWNER))
    if customer:
        cond.append(CUSTOMERS.c.code == customer)
    return and_(true(), *cond)


@router.get("/promises", response_model=PromisePage, summary="Promises to pay")
def get_promises(
    principal: Annotated[Principal, Depends(require("customers.view"))], url: DbUrl,
    customer: Annotated[str | None, NoNul] = None,
    status: Annotated[str | None, Query(pattern="^(open|kept|broken|cancelled)$")] = None,
    page: Page = 1, per_page: PerPage = 50,
) -> PromisePage:  # fmt: skip
    p = coll.PROMISES
    join = p.join(CUSTOMERS, CUSTOMERS.c.id == p.c.customer_id)
    where = _visible_customers(principal, customer)
    if status:
        where = and_(where, p.c.status == status)
    stmt = (select(p, CUSTOMERS.c.code).select_from(join).where(where)
            .order_by(p.c.id.desc()).limit(per_page).offset((page - 1) * per_page))  # fmt: skip
    with unit_of_work(url) as conn:
        total = conn.execute(select(func.count()).select_from(join).where(where)).scalar_one()
        items = [_promise_out(dict(r), r["code"]) for r in conn.execute(stmt).mappings()]
    return PromisePage(items=items, total=total, page=page, per_page=per_page)


@router.post("/promises", response_model=PromiseOut, status_code=201, summary="Record a promise")
def post_promise(
    body: PromiseIn, principal: Annotated[Principal, Depends(require("collections.act"))],
    url: DbUrl,
) -> PromiseOut:  # fmt: skip
    wl.customer_for_action(url, body.customer, principal)
    day = _day(body.as_of)
    with unit_of_work(url) as conn:
        promise_id = _action(coll.record_promise, conn, body.customer, body.promised_date,
                             body.amount, day, principal.actor, note=body.note)  # fmt: skip
        row = conn.execute(select(coll.PROMISES).where(coll.PROMISES.c.id == promise_id)
                           ).mappings().one()  # fmt: skip
        return _promise_out(dict(row), body.customer)


class DisputeIn(BaseModel):
    invoice: str = Code
    reason: str = Field(min_length=1, max_length=500)
    as_of: dt.date | None = Day


class ResolveIn(BaseModel):
    resolution: str | None = Field(None, max_length=1000)
    as_of: dt.date | None = Day


class DisputeOut(BaseModel):
    id: int
    invoice: str
    customer: str
    opened_on: dt.date
    reason: str
    resolved_on: dt.date | None = None
    resolution: str | None = None


class DisputePage(Paged):
    items: list[DisputeOut]


def _disputes(url: str | None, where: Any, page: int = 1,
              per_page: int = 500) -> tuple[list[DisputeOut], int]:  # fmt: skip
    d = coll.DISPUTES
    join = d.join(coll.DOCUMENTS, coll.DOCUMENTS.c.id == d.c.document_id).join(
        CUSTOMERS, CUSTOMERS.c.id == d.c.customer_id)  # fmt: skip
    stmt = (select(d, coll.DOCUMENTS.c.number, CUSTOMERS.c.code).select_from(join).where(where)
            .order_by(d.c.id.desc()).limit(per_page).offset((page - 1) * per_page))  # fmt: skip
    with unit_of_work(url) as conn:
        total = conn.execute(select(func.count()).select_from(join).where(where)).scalar_one()
        items = [DisputeOut(id=r["id"], invoice=r["number"], customer=r["code"],
                            opened_on=r["opened_on"], reason=r["reason"],
                            resolved_on=r["resolved_on"], resolution=r["resolution"])
                 for r in conn.execute(stmt).mappings()]  # fmt: skip
    return items, total


def _dispute(url: str | None, dispute_id: int) -> DisputeOut:
    return _disputes(url, coll.DISPUTES.c.id == dispute_id)[0][0]


@router.get("/disputes", response_model=DisputePage, summary="Disputes")
def get_disputes(
    principal: Annotated[Principal, Depends(require("customers.view"))], url: DbUrl,
    customer: Annotated[str | None, NoNul] = None, open_only: bool = False,
    page: Page = 1, per_page: PerPage = 50,
) -> DisputePage:  # fmt: skip
    where = _visible_customers(principal, customer)
    if open_only:
        where = and_(where, coll.DISPUTES.c.resolved_on.is_(None))
    items, total = _disputes(url, where, page, per_page)
    return DisputePage(items=items, total=total, page=page, per_page=per_page)


def _invoice_customer(url: str | None, number: str, principal: Principal) -> str:
    with unit_of_work(url) as conn:
        code = conn.execute(
            select(CUSTOMERS.c.code).join(coll.DOCUMENTS,
                                          coll.DOCUMENTS.c.customer_id == CUSTOMERS.c.id)
            .where(coll.DOCUMENTS.c.number == number, coll.DOCUMENTS.c.kind == "invoice")
        ).scalar()  # fmt: skip
    if code is None:
        raise HTTPException(status_code=404, detail=f"no invoice {number!r}")
    wl.customer_for_action(url, code, principal)
    return code


@router.post("/disputes", response_model=DisputeOut, status_code=201, summary="Open a dispute")
def post_dispute(
    body: DisputeIn, principal: Annotated[Principal, Depends(require("collections.act"))],
    url: DbUrl,
) -> DisputeOut:  # fmt: skip
    _invoice_customer(url, body.invoice, principal)
    with unit_of_work(url) as conn:
        dispute_id = _action(coll.open_dispute, conn, body.invoice, body.reason,
                             _day(body.as_of), principal.actor)  # fmt: skip
    return _dispute(url, dispute_id)


@router.post("/disputes/{invoice}/resolve", response_model=DisputeOut, summary="Resolve")
def post_resolve(
    invoice: Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")], body: ResolveIn,
    principal: Annotated[Principal, Depends(require("collections.act"))], url: DbUrl,
) -> DisputeOut:  # fmt: skip
    _invoice_customer(url, invoice, principal)
    with unit_of_work(url) as conn:
        dispute_id = _action(coll.resolve_dispute, conn, invoice, body.resolution or "",
                             _day(body.as_of), principal.actor)  # fmt: skip
    return _dispute(url, dispute_id)


__all__ = ["router"]
