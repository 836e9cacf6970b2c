"""The customer's collections and risk section (risk class, scores, predictions, dunning
state of the open invoices, actions) and its actions: log a call, record a promise or a
dispute, put on hold, request a limit change, send a statement of account, record or end
insolvency proceedings (credit managers).

Each action is a CSRF-protected form (or an HTMX post), runs in one transaction through
the collections / risk use cases (which write the timeline and the audit log), and answers
a redirect to the customer page, or the refreshed worklist when posted from it.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import quote

import polars as pl
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, insert, select

from encours.collections import actions as coll
from encours.collections.tasks import open_tasks
from encours.domain.dunning import CALL_OUTCOMES
from encours.i18n import _
from encours.money import from_minor
from encours.store.db import inserted_id, unit_of_work
from encours.store.outbox_schema import Communication, CommunicationItem
from encours.store.schema import Contact
from encours.web import queries
from encours.web.accounts import Principal
from encours.web.cache import BuildCache
from encours.web.deps import MAX_DAY, MIN_DAY, AsOf, DbUrl, csrf_protect, language, render, require
from encours.web.formatting import gettext_for
from encours.web.pages import worklist as wl

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)

Code = Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")]
Note = Annotated[str, Form(max_length=1000)]
COMMUNICATIONS = Communication.__table__
ITEMS = CommunicationItem.__table__
CONTACTS = Contact.__table__


def _day(value: str | None, default: dt.date | None = None) -> dt.date:
    if not value and default is not None:
        return default
    try:
        day = dt.date.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"not a date: {value!r}") from exc
    if not MIN_DAY <= day <= MAX_DAY:
        raise HTTPException(status_code=422, detail="the date must be between 1900 and 2200")
    return day


def _amount(value: str) -> Decimal:
    text = value.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise HTTPException(status_code=422, detail=f"not an amount: {value!r}") from exc
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e15"):
        raise HTTPException(status_code=422, detail=f"not an amount: {value!r}")
    return amount


def _done(request: Request, url: str | None, code: str, as_of: dt.date,
          principal: Principal, collector: str | None) -> Response:  # fmt: skip
    """After an action: the refreshed worklist for an HTMX post from it, else the page."""
    if request.headers.get("hx-request") == "true" and request.headers.get(
        "hx-target"
    ) == "worklist-body":  # fmt: skip
        who = wl.collector_of(principal, collector)
        data = wl.worklist(url, as_of, principal, who)
        return render(request, "_worklist_body.html", wl.worklist_context(principal, data,
                                                                         as_of, who))  # fmt: skip
    return RedirectResponse(f"/customers/{code}?as_of={as_of.isoformat()}", status_code=303)


def _run(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    try:
        return fn(*args, **kwargs)
    except (coll.ActionError, ValueError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


# --- the section ---------------------------------------------------------------------------


def dunning_state(conn, customer_id: int) -> pl.DataFrame:  # noqa: ANN001
    """Per invoice of the customer: the last dunning level that listed it (not cancelled)."""
    rows = conn.execute(
        select(ITEMS.c.document_id, COMMUNICATIONS.c.level_code, COMMUNICATIONS.c.as_of,
               COMMUNICATIONS.c.status, COMMUNICATIONS.c.channel)
        .join(COMMUNICATIONS, COMMUNICATIONS.c.id == ITEMS.c.communication_id)
        .where(COMMUNICATIONS.c.customer_id == customer_id,
               COMMUNICATIONS.c.status != "cancelled")
        .order_by(COMMUNICATIONS.c.as_of, COMMUNICATIONS.c.id)
    ).all()  # fmt: skip
    schema = {"document_id": pl.Int64, "last_level": pl.String, "last_day": pl.Date,
              "last_status": pl.String, "last_channel": pl.String}  # fmt: skip
    frame = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    return frame.unique("document_id", keep="last")


@router.get("/customers/{code}/collections")
def customer_section(
    request: Request,
    code: Code,
    principal: Annotated[Principal, Depends(require("customers.view"))],
    url: DbUrl,
    as_of: AsOf,
) -> HTMLResponse:
    from encours.risk.classes import history, reason_text

    with unit_of_work(url) as conn:
        c = queries.find_customer(conn, code, principal)
        if c is None:
            raise HTTPException(status_code=404, detail=code)
        assessments = history(conn, c["id"])
        invoices = queries.positions_store.open_invoices(conn, as_of, c["id"])
        state = dunning_state(conn, c["id"])
        tasks = open_tasks(conn).filter(pl.col("customer_id") == c["id"])
        promises = conn.execute(
            select(coll.PROMISES).where(coll.PROMISES.c.customer_id == c["id"])
            .order_by(coll.PROMISES.c.id.desc()).limit(5)
        ).mappings().all()  # fmt: skip
        holds = conn.execute(
            select(coll.HOLDS).where(coll.HOLDS.c.customer_id == c["id"],
                                     coll.HOLDS.c.until >= as_of)
            .order_by(coll.HOLDS.c.id.desc())
        ).mappings().all()  # fmt: skip
        pending_limit = _pending_limit(conn, c["id"])
        statement = _latest_statement(conn, as_of, c["id"])
    scorecard = _scorecard_lines(url, as_of, c["id"])
    current = [a for a in assessments if a["as_of"] <= as_of]
    latest = current[-1] if current else None
    preds = wl.predictions(url, as_of)
    frame = invoices.join(state, on="document_id", how="left")
    if preds.frame is not None:
        frame = frame.join(preds.frame, on="document_id", how="left")
    frame = frame.with_columns(
        days_overdue=(pl.lit(as_of) - pl.col("due_date")).dt.total_days()
    ).sort("due_date", "number")  # fmt: skip
    ctx = {
        "c": c, "as_of": as_of, "latest": latest,
        "reasons": [reason_text(r) for r in (latest or {}).get("reasons") or []],
        "assessments": list(reversed(assessments))[:12], "invoices": frame.to_dicts(),
        "model": preds, "promises": [dict(p) for p in promises], "holds": [dict(h) for h in holds],
        "tasks": tasks.to_dicts(),
        "can_act": wl.may_act_on(principal, c), "pending_limit": pending_limit,
        "outcomes": CALL_OUTCOMES, "limit_text": "" if c["credit_limit_minor"] is None
        else str(from_minor(c["credit_limit_minor"], c["currency"])),
        "tomorrow": as_of + dt.timedelta(days=7),
        "scorecard": scorecard, "statement": statement,
    }  # fmt: skip
    return render(request, "_customer_collections.html", ctx)


def _latest_statement(conn, as_of: dt.date, customer_id: int):  # noqa: ANN001, ANN202
    """The ratios and failure scores of the customer's latest statement available on the day
    (`risk.statements.evaluate`), or None."""
    from encours.risk.statements import evaluate, latest_statements

    frame = latest_statements(conn, as_of, customer_id)
    return evaluate(frame.row(0, named=True)) if frame.height else None


# the payment-behaviour scorecard of every customer (`risk.behaviour`, computed for all at
# once: seconds at 1M invoices), cached per day and ledger version (every action is audited:
# a new version). After a change, the previous scorecard of the same day is served while a
# background thread computes the new one, so an action never waits for the whole portfolio.
_SCORED = BuildCache(4)
_REFRESHING: set[tuple] = set()
_REFRESHING_LOCK = threading.Lock()


def _compute_scored(url: str | None, as_of: dt.date) -> pl.DataFrame:
    from encours.risk.behaviour import behaviour_features, score_features

    with unit_of_work(url) as conn:
        return score_features(behaviour_features(conn, as_of)).sort("customer_id")


def _refresh(url: str | None, as_of: dt.date, key: tuple) -> None:
    try:
        _SCORED.get_or_build(key, lambda: _compute_scored(url, as_of))
    finally:
        with _REFRESHING_LOCK:
            _REFRESHING.discard(key)


def _scored(url: str | None, as_of: dt.date) -> pl.DataFrame:
    with unit_of_work(url) as conn:
        key = (url, as_of, queries.ledger_version(conn))
    hit = _SCORED.get(key)
    if hit is not None:
        return hit
    stale = _SCORED.latest(lambda k: k[:2] == key[:2])
    if stale is None:  # the first view of the day: computed in the request
        scored: pl.DataFrame = _SCORED.get_or_build(key, lambda: _compute_scored(url, as_of))
        return scored
    with _REFRESHING_LOCK:
        if key not in _REFRESHING:
            _REFRESHING.add(key)
            threading.Thread(target=_refresh, args=(url, as_of, key), daemon=True).start()
    return stale


def _scorecard_lines(url: str | None, as_of: dt.date, customer_id: int) -> dict | None:
    """The customer's scorecard lines (`risk.behaviour.explain`) and total, or None without
    payment history on the day."""
    from encours.risk.behaviour import DEFAULT_SCORECARD, explain

    row = _scored(url, as_of).filter(pl.col("customer_id") == customer_id)
    if not row.height:
        return None
    card = row.row(0, named=True)
    if not card["has_history"]:
        return None
    return {"lines": explain(card), "points": card["behaviour_points"],
            "max_points": DEFAULT_SCORECARD.max_points}  # fmt: skip


def _pending_limit(conn, customer_id: int) -> dict | None:  # noqa: ANN001
    from encours.store.risk_schema import LimitRequest

    table = LimitRequest.__table__
    row = conn.execute(
        select(table).where(table.c.customer_id == customer_id, table.c.status == "pending")
    ).mappings().first()  # fmt: skip
    return None if row is None else dict(row)


# --- actions -------------------------------------------------------------------------------

ActPrincipal = Annotated[Principal, Depends(require("collections.act"))]
AsOfForm = Annotated[str, Form(max_length=10)]
Collector = Annotated[str, Form(max_length=200)]


@router.post("/customers/{code}/call")
def log_call(
    request: Request, code: Code, principal: ActPrincipal, url: DbUrl,
    outcome: Annotated[str, Form(max_length=20)], note: Note = "", as_of: AsOfForm = "",
    collector: Collector = "",
) -> Response:  # fmt: skip
    wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        _run(coll.record_call, conn, code, outcome, day, principal.actor, note.strip() or None)
    return _done(request, url, code, day, principal, collector or None)


@router.post("/customers/{code}/promise")
def record_promise(
    request: Request, code: Code, principal: ActPrincipal, url: DbUrl,
    promised_date: Annotated[str, Form(max_length=10)], amount: Annotated[str, Form(max_length=40)],
    note: Note = "", as_of: AsOfForm = "", collector: Collector = "",
) -> Response:  # fmt: skip
    wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        _run(coll.record_promise, conn, code, _day(promised_date), _amount(amount), day,
             principal.actor, note=note.strip() or None)  # fmt: skip
    return _done(request, url, code, day, principal, collector or None)


@router.post("/customers/{code}/dispute")
def open_dispute(
    request: Request, code: Code, principal: ActPrincipal, url: DbUrl,
    invoice: Annotated[str, Form(max_length=64)], reason: Annotated[str, Form(max_length=500)],
    as_of: AsOfForm = "",
) -> Response:  # fmt: skip
    customer = wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        _invoice_of(conn, invoice, customer["id"])
        _run(coll.open_dispute, conn, invoice, reason, day, principal.actor)
    return _done(request, url, code, day, principal, None)


@router.post("/customers/{code}/dispute/resolve")
def resolve_dispute(
    request: Request, code: Code, principal: ActPrincipal, url: DbUrl,
    invoice: Annotated[str, Form(max_length=64)], resolution: Note = "", as_of: AsOfForm = "",
) -> Response:  # fmt: skip
    customer = wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        _invoice_of(conn, invoice, customer["id"])
        _run(coll.resolve_dispute, conn, invoice, resolution, day, principal.actor)
    return _done(request, url, code, day, principal, None)


def _invoice_of(conn, number: str, customer_id: int) -> None:  # noqa: ANN001
    owner = conn.execute(
        select(coll.DOCUMENTS.c.customer_id).where(coll.DOCUMENTS.c.number == number)
    ).scalar()  # fmt: skip
    if owner != customer_id:
        raise HTTPException(status_code=422, detail=f"no invoice {number!r} for this customer")


@router.post("/customers/{code}/hold")
def put_on_hold(
    request: Request, code: Code, principal: ActPrincipal, url: DbUrl,
    until: Annotated[str, Form(max_length=10)], reason: Annotated[str, Form(max_length=500)],
    as_of: AsOfForm = "",
) -> Response:  # fmt: skip
    wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        _run(coll.add_hold, conn, code, reason, _day(until), day, principal.actor)
    return _done(request, url, code, day, principal, None)


@router.post("/customers/{code}/limit-request")
def request_limit(
    request: Request, code: Code,
    principal: Annotated[Principal, Depends(require("limits.request"))], url: DbUrl,
    amount: Annotated[str, Form(max_length=40)], reason: Note = "", as_of: AsOfForm = "",
) -> Response:  # fmt: skip
    from encours.risk.limits import request_limit as make_request

    wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    value = _amount(amount)
    with unit_of_work(url) as conn:
        _run(make_request, conn, code, value, actor=principal.actor, as_of=day,
             reason=reason.strip() or None)  # fmt: skip
    return _done(request, url, code, day, principal, None)


@router.post("/customers/{code}/statement")
def send_statement(
    request: Request, code: Code, principal: ActPrincipal, url: DbUrl, as_of: AsOfForm = "",
) -> Response:  # fmt: skip
    """Queue an approved email to the customer's main contact with the statement of account
    attached (the outbox attaches it to every email); `Send` on the dunning page or
    `encours dunning send` delivers it."""
    customer = wl.customer_for_action(url, code, principal)
    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        queue_statement(conn, customer, day, principal.actor, language(request))
    return _done(request, url, code, day, principal, None)


InsolvencyPrincipal = Annotated[Principal, Depends(require("customers.insolvency"))]


def _to_customer(code: str) -> Response:
    return RedirectResponse(f"/customers/{quote(code, safe='')}", status_code=303)


@router.post("/customers/{code}/insolvency")
def declare_insolvency(
    code: Code, principal: InsolvencyPrincipal, url: DbUrl,
    judgment_date: Annotated[str, Form(max_length=10)], kind: Annotated[str, Form(max_length=40)],
) -> Response:  # fmt: skip
    """Record the judgment opening collective insolvency proceedings (credit managers):
    no penalties nor indemnity any more, a task to declare the claim within 2 months."""
    from encours.risk import insolvency

    wl.customer_for_action(url, code, principal)
    day = _day(judgment_date)
    with unit_of_work(url) as conn:
        _run(insolvency.declare_insolvency, conn, code, day, kind, principal.actor)
    return _to_customer(code)


@router.post("/customers/{code}/insolvency/end")
def end_insolvency(
    code: Code, principal: InsolvencyPrincipal, url: DbUrl,
    end_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:  # fmt: skip
    from encours.risk import insolvency

    wl.customer_for_action(url, code, principal)
    day = _day(end_date, dt.date.today())
    with unit_of_work(url) as conn:
        _run(insolvency.end_insolvency, conn, code, day, principal.actor)
    return _to_customer(code)


STATEMENT_LEVEL = "statement"


def queue_statement(conn, customer: dict, day: dt.date, actor: str, lang: str) -> int:  # noqa: ANN001
    contact = conn.execute(
        select(CONTACTS.c.email, CONTACTS.c.name, CONTACTS.c.language)
        .where(CONTACTS.c.customer_id == customer["id"]).order_by(CONTACTS.c.id).limit(1)
    ).first()  # fmt: skip
    if contact is None or not contact.email:
        raise HTTPException(status_code=422, detail="the customer has no contact email")
    lang = (contact.language or lang or "fr").lower()[:2]
    lang = lang if lang in ("fr", "en") else "fr"
    exists = conn.execute(
        select(func.count()).select_from(COMMUNICATIONS).where(
            COMMUNICATIONS.c.customer_id == customer["id"], COMMUNICATIONS.c.as_of == day,
            COMMUNICATIONS.c.level_code == STATEMENT_LEVEL)
    ).scalar_one()  # fmt: skip
    if exists:
        raise HTTPException(status_code=422, detail="a statement is already queued for this day")
    t = gettext_for(lang)
    subject = t("Statement of account as of {day}").format(day=day.isoformat())
    body = t("Hello,\n\nPlease find attached your statement of account as of {day}.\n\n"
             "Best regards").format(day=day.isoformat())  # fmt: skip
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    comm_id = int(inserted_id(conn.execute(insert(COMMUNICATIONS).values(
        customer_id=customer["id"], as_of=day, policy_code="manual", level_code=STATEMENT_LEVEL,
        channel="email", language=lang, status="approved", approved_by=f"manual:{actor}",
        approved_at=now, to_address=contact.email, subject=subject, body_text=body,
        currency=customer["currency"],
    ))))  # fmt: skip
    after = {"status": "approved", "to": contact.email, "kind": STATEMENT_LEVEL}
    coll.log_event(conn, customer["id"], day, "communication", actor,
                   _("Statement of account queued for {to}").format(to=contact.email),
                   "communications", comm_id, after)  # fmt: skip
    coll.audit(conn, actor, "dunning.statement", "communication", str(comm_id), None, after)
    return comm_id


@router.get("/customers/{code}/statement.pdf")
def statement_pdf(
    request: Request, code: Code,
    principal: Annotated[Principal, Depends(require("customers.view"))], url: DbUrl,
    as_of: AsOf,
) -> Response:  # fmt: skip
    from encours.collections.statement import statement_of_account_pdf

    with unit_of_work(url) as conn:
        customer = queries.find_customer(conn, code, principal)
        if customer is None:
            raise HTTPException(status_code=404, detail=code)
        pdf = statement_of_account_pdf(conn, customer["id"], as_of, language(request))
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in code)
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="statement-{safe}-{as_of}.pdf"'})  # fmt: skip


__all__ = ["queue_statement", "router"]
