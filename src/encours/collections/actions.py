"""What collectors and managers do between runs: promises to pay, disputes, holds, call
outcomes, payment plans and approvals. Each use case takes an open connection (the caller's
unit of work) and writes its fact, a timeline event and an audit entry together.

Pause rules these facts feed (see encours.domain.dunning and collections.engine):

* a disputed invoice is left out of dunning until its dispute is resolved;
* a promise to pay (date, amount) pauses the customer until the date + grace days; a run
  after that marks it kept (payments since the promise cover it) or broken (escalation);
* a payment plan pauses the customer while it is followed, instalment by instalment; a
  missed instalment breaks it (escalation);
* a hold ("do not dun") needs a reason and an end date; it pauses until that day included.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection, insert, select, update

from encours.collections.tasks import close_customer_tasks, create_call_task
from encours.domain.dunning import APPROVAL_ROLES, CALL_OUTCOMES
from encours.i18n import _
from encours.money import MoneyError, from_minor, to_minor
from encours.store.collections_schema import (
    Dispute,
    DunningHold,
    PaymentPlan,
    PaymentPlanInstalment,
    Promise,
)
from encours.store.db import inserted_id
from encours.store.frames import query_frame
from encours.store.outbox_schema import Communication, TimelineEvent
from encours.store.schema import AuditEntry, Customer, Document, _now

CUSTOMERS = Customer.__table__
DOCUMENTS = Document.__table__
PROMISES = Promise.__table__
DISPUTES = Dispute.__table__
HOLDS = DunningHold.__table__
PLANS = PaymentPlan.__table__
INSTALMENTS = PaymentPlanInstalment.__table__
COMMUNICATIONS = Communication.__table__
TIMELINE = TimelineEvent.__table__
AUDIT = AuditEntry.__table__

DEFAULT_GRACE_DAYS = 3


class ActionError(ValueError):
    """An action that cannot be recorded (unknown customer, bad amount, ...)."""


# --- shared helpers ---------------------------------------------------------------------


def audit(conn: Connection, actor: str, action: str, entity: str, key: str,
          before: dict | None, after: dict | None) -> None:  # fmt: skip
    conn.execute(
        insert(AUDIT).values(
            actor=actor, action=action, entity=entity, entity_key=key, before=before, after=after
        )
    )


def log_event(
    conn: Connection,
    customer_id: int,
    day: dt.date,
    kind: str,
    actor: str,
    summary: str,
    ref_table: str | None = None,
    ref_id: int | None = None,
    data: dict | None = None,
) -> int:
    """Append an event to the customer's timeline."""
    return int(
        inserted_id(
            conn.execute(
                insert(TIMELINE).values(
                    customer_id=customer_id,
                    day=day,
                    kind=kind,
                    actor=actor,
                    summary=summary,
                    ref_table=ref_table,
                    ref_id=ref_id,
                    data=data,
                )  # fmt: skip
            )
        )
    )


def customer_by_code(conn: Connection, code: str) -> Any:
    row = conn.execute(
        select(CUSTOMERS.c.id, CUSTOMERS.c.code, CUSTOMERS.c.name, CUSTOMERS.c.currency).where(
            CUSTOMERS.c.code == code
        )
    ).first()
    if row is None:
        raise ActionError(_("unknown customer {code!r}").format(code=code))
    return row


def _minor(amount: Decimal | str, currency: str) -> int:
    try:
        minor = to_minor(Decimal(str(amount).strip().replace(",", ".")), currency)
    except (MoneyError, ArithmeticError, ValueError) as exc:
        raise ActionError(_("invalid amount {amount!r}").format(amount=str(amount))) from exc
    if minor <= 0:
        raise ActionError(_("the amount must be positive, got {amount}").format(amount=amount))
    return minor


def _money_text(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency)} {currency}"


# --- promises ---------------------------------------------------------------------------


def record_promise(
    conn: Connection,
    customer_code: str,
    promised_date: dt.date,
    amount: Decimal | str,
    as_of: dt.date,
    actor: str,
    grace_days: int = DEFAULT_GRACE_DAYS,
    note: str | None = None,
) -> int:
    """A promise to pay `amount` by `promised_date`; it replaces the customer's open one."""
    customer = customer_by_code(conn, customer_code)
    minor = _minor(amount, customer.currency)
    if promised_date < as_of:
        raise ActionError(_("the promised date is in the past"))
    if grace_days < 0:
        raise ActionError(_("the grace period must not be negative"))
    replaced = list(conn.execute(
        select(PROMISES.c.id).where((PROMISES.c.customer_id == customer.id)
                                    & (PROMISES.c.status == "open"))
    ).scalars())  # fmt: skip
    if replaced:
        conn.execute(
            update(PROMISES).where(PROMISES.c.id.in_(replaced))
            .values(status="cancelled", settled_on=as_of)
        )  # fmt: skip
    promise_id = int(
        inserted_id(
            conn.execute(
                insert(PROMISES).values(
                    customer_id=customer.id,
                    made_on=as_of,
                    promised_date=promised_date,
                    amount_minor=minor,
                    currency=customer.currency,
                    grace_days=grace_days,
                    status="open",
                    note=note,
                    actor=actor,
                )  # fmt: skip
            )
        )
    )
    after = {"promised_date": promised_date.isoformat(), "amount_minor": minor,
             "currency": customer.currency, "grace_days": grace_days,
             "replaces": replaced}  # fmt: skip
    summary = _("Promise to pay {amount} by {date}").format(
        amount=_money_text(minor, customer.currency), date=promised_date.isoformat()
    )
    log_event(conn, customer.id, as_of, "promise", actor, summary, "promises", promise_id, after)
    audit(conn, actor, "dunning.promise", "promise", str(promise_id), None, after)
    return promise_id


# --- disputes ---------------------------------------------------------------------------


def _invoice(conn: Connection, number: str) -> Any:
    row = conn.execute(
        select(DOCUMENTS.c.id, DOCUMENTS.c.customer_id, DOCUMENTS.c.disputed, DOCUMENTS.c.kind)
        .where(DOCUMENTS.c.number == number)
    ).first()  # fmt: skip
    if row is None or row.kind != "invoice":
        raise ActionError(_("unknown invoice {number!r}").format(number=number))
    return row


def open_dispute(
    conn: Connection, invoice_number: str, reason: str, as_of: dt.date, actor: str
) -> int:
    """Dispute an invoice: it is left out of dunning until the dispute is resolved."""
    if not (reason or "").strip():
        raise ActionError(_("a dispute needs a reason"))
    invoice = _invoice(conn, invoice_number)
    current = conn.execute(
        select(DISPUTES.c.id).where((DISPUTES.c.document_id == invoice.id)
                                    & DISPUTES.c.resolved_on.is_(None))
    ).scalar()  # fmt: skip
    if current is not None:
        raise ActionError(_("invoice {number} is already disputed").format(number=invoice_number))
    conn.execute(update(DOCUMENTS).where(DOCUMENTS.c.id == invoice.id).values(disputed=True))
    dispute_id = int(
        inserted_id(
            conn.execute(
                insert(DISPUTES).values(
                    document_id=invoice.id,
                    customer_id=invoice.customer_id,
                    opened_on=as_of,
                    reason=reason.strip(),
                    actor=actor,
                )  # fmt: skip
            )
        )
    )
    data = {"invoice": invoice_number, "reason": reason.strip()}
    summary = _("Invoice {number} disputed: {reason}").format(
        number=invoice_number, reason=reason.strip()
    )
    log_event(conn, invoice.customer_id, as_of, "dispute", actor, summary, "disputes",
              dispute_id, data)  # fmt: skip
    audit(conn, actor, "dunning.dispute.open", "document", invoice_number,
          {"disputed": bool(invoice.disputed)}, {"disputed": True, **data})  # fmt: skip
    return dispute_id


def resolve_dispute(
    conn: Connection, invoice_number: str, resolution: str | None, as_of: dt.date, actor: str
) -> int:
    """Resolve an invoice's dispute: the invoice is dunned again from the next run."""
    invoice = _invoice(conn, invoice_number)
    dispute_id = conn.execute(
        select(DISPUTES.c.id).where((DISPUTES.c.document_id == invoice.id)
                                    & DISPUTES.c.resolved_on.is_(None))
    ).scalar()  # fmt: skip
    if dispute_id is None and not invoice.disputed:
        raise ActionError(_("invoice {number} is not disputed").format(number=invoice_number))
    resolution = (resolution or "").strip() or None
    if dispute_id is None:  # flagged disputed by an import: record the resolution anyway
        dispute_id = inserted_id(
            conn.execute(
                insert(DISPUTES).values(
                    document_id=invoice.id,
                    customer_id=invoice.customer_id,
                    opened_on=as_of,
                    reason="(imported)",
                    resolved_on=as_of,
                    resolution=resolution,
                    actor=actor,
                )  # fmt: skip
            )
        )
    else:
        conn.execute(
            update(DISPUTES).where(DISPUTES.c.id == dispute_id)
            .values(resolved_on=as_of, resolution=resolution)
        )  # fmt: skip
    conn.execute(update(DOCUMENTS).where(DOCUMENTS.c.id == invoice.id).values(disputed=False))
    data = {"invoice": invoice_number, "resolution": resolution}
    summary = _("Dispute on invoice {number} resolved").format(number=invoice_number)
    log_event(conn, invoice.customer_id, as_of, "dispute", actor, summary, "disputes",
              int(dispute_id), data)  # fmt: skip
    audit(conn, actor, "dunning.dispute.resolve", "document", invoice_number,
          {"disputed": True}, {"disputed": False, **data})  # fmt: skip
    return int(dispute_id)


# --- holds ------------------------------------------------------------------------------


def add_hold(
    conn: Connection, customer_code: str, reason: str, until: dt.date, as_of: dt.date, actor: str
) -> int:
    """'Do not dun' the customer from `as_of` to `until` included; a reason is required."""
    if not (reason or "").strip():
        raise ActionError(_("a hold needs a reason"))
    if until < as_of:
        raise ActionError(_("the end date of a hold must not be before its start"))
    customer = customer_by_code(conn, customer_code)
    hold_id = int(
        inserted_id(
            conn.execute(
                insert(HOLDS).values(
                    customer_id=customer.id,
                    start=as_of,
                    until=until,
                    reason=reason.strip(),
                    actor=actor,
                )  # fmt: skip
            )
        )
    )
    data = {"start": as_of.isoformat(), "until": until.isoformat(), "reason": reason.strip()}
    summary = _("Dunning on hold until {date}: {reason}").format(
        date=until.isoformat(), reason=reason.strip()
    )
    log_event(conn, customer.id, as_of, "hold", actor, summary, "dunning_holds", hold_id, data)
    audit(conn, actor, "dunning.hold", "customer", customer_code, None, data)
    return hold_id


# --- calls ------------------------------------------------------------------------------


def record_call(
    conn: Connection,
    customer_code: str,
    outcome: str,
    as_of: dt.date,
    actor: str,
    note: str | None = None,
) -> list[int]:
    """A call's outcome (reached, promised, disputed, no_answer): closes the customer's
    open call tasks and goes to the timeline. Returns the ids of the tasks closed."""
    if outcome not in CALL_OUTCOMES:
        raise ActionError(
            _("unknown call outcome {outcome!r} (expected one of {choices})").format(
                outcome=outcome, choices=", ".join(CALL_OUTCOMES)
            )
        )
    customer = customer_by_code(conn, customer_code)
    closed = close_customer_tasks(conn, customer.id, outcome, note)
    data = {"outcome": outcome, "note": note, "tasks": closed}
    summary = _("Call: {outcome}").format(outcome=outcome) + (f" ({note})" if note else "")
    log_event(conn, customer.id, as_of, "call", actor, summary, "tasks",
              closed[0] if closed else None, data)  # fmt: skip
    audit(conn, actor, "dunning.call", "customer", customer_code, None, data)
    return closed


# --- payment plans ----------------------------------------------------------------------


def create_plan(
    conn: Connection,
    customer_code: str,
    instalments: list[tuple[dt.date, Decimal | str]],
    as_of: dt.date,
    actor: str,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> int:
    """A payment plan (dates and amounts); it replaces the customer's active plan."""
    if not instalments:
        raise ActionError(_("a payment plan needs at least one instalment"))
    customer = customer_by_code(conn, customer_code)
    rows = sorted((day, _minor(amount, customer.currency)) for day, amount in instalments)
    days = [d for d, _m in rows]
    if len(set(days)) != len(days):
        raise ActionError(_("two instalments on the same day"))
    if days[0] < as_of:
        raise ActionError(_("an instalment is in the past"))
    replaced = list(conn.execute(
        select(PLANS.c.id).where((PLANS.c.customer_id == customer.id)
                                 & (PLANS.c.status == "active"))
    ).scalars())  # fmt: skip
    if replaced:
        conn.execute(
            update(PLANS).where(PLANS.c.id.in_(replaced))
            .values(status="cancelled", settled_on=as_of)
        )  # fmt: skip
    plan_id = int(
        inserted_id(
            conn.execute(
                insert(PLANS).values(
                    customer_id=customer.id,
                    created_on=as_of,
                    currency=customer.currency,
                    grace_days=grace_days,
                    status="active",
                    actor=actor,
                )  # fmt: skip
            )
        )
    )
    conn.execute(
        insert(INSTALMENTS),
        [{"plan_id": plan_id, "due_date": d, "amount_minor": m, "status": "due"} for d, m in rows],
    )
    data = {"instalments": [[d.isoformat(), m] for d, m in rows], "currency": customer.currency,
            "grace_days": grace_days, "replaces": replaced}  # fmt: skip
    total = sum(m for _d, m in rows)
    summary = _("Payment plan: {count} instalments, {amount} in total").format(
        count=len(rows), amount=_money_text(total, customer.currency)
    )
    log_event(conn, customer.id, as_of, "payment_plan", actor, summary, "payment_plans",
              plan_id, data)  # fmt: skip
    audit(conn, actor, "dunning.plan", "payment_plan", str(plan_id), None, data)
    return plan_id


# --- approvals --------------------------------------------------------------------------


def approve(
    conn: Connection,
    role: str,
    actor: str,
    as_of: dt.date,
    customer_code: str | None = None,
) -> list[int]:
    """Approve the drafts that wait for `role` (of one customer, or all). A phone level's
    approval creates the collector's call task. Returns the approved communication ids."""
    if role not in APPROVAL_ROLES:
        raise ActionError(
            _("unknown role {role!r} (expected one of {choices})").format(
                role=role, choices=", ".join(APPROVAL_ROLES)
            )
        )
    where = (COMMUNICATIONS.c.status == "draft") & (COMMUNICATIONS.c.requires_approval_by == role)
    if customer_code is not None:
        where &= COMMUNICATIONS.c.customer_id == customer_by_code(conn, customer_code).id
    rows = conn.execute(
        select(COMMUNICATIONS.c.id, COMMUNICATIONS.c.customer_id, COMMUNICATIONS.c.as_of,
               COMMUNICATIONS.c.channel, COMMUNICATIONS.c.level_code, COMMUNICATIONS.c.subject)
        .where(where).order_by(COMMUNICATIONS.c.id)
    ).all()  # fmt: skip
    now = _now()
    approved_by = f"{role}:{actor}"
    for row in rows:
        values: dict[str, Any] = {"status": "approved", "approved_by": approved_by,
                                  "approved_at": now}  # fmt: skip
        if row.channel == "phone":
            # A phone level is delivered by the collector's task, not by the outbox.
            create_call_task(conn, row._asdict())
            values.update(status="sent", sent_at=now)
        conn.execute(update(COMMUNICATIONS).where(COMMUNICATIONS.c.id == row.id).values(**values))
        summary = _("Communication {level} approved by {who}").format(
            level=row.level_code, who=approved_by
        )
        log_event(conn, row.customer_id, as_of, "approval", actor, summary, "communications",
                  row.id, {"role": role})  # fmt: skip
        after = {"status": values["status"], "approved_by": approved_by}
        audit(conn, actor, "dunning.approve", "communication", str(row.id),
              {"status": "draft"}, after)  # fmt: skip
    return [row.id for row in rows]


# --- reading ----------------------------------------------------------------------------

TIMELINE_SCHEMA = {
    "id": pl.Int64, "day": pl.Date, "kind": pl.String, "actor": pl.String,
    "summary": pl.String, "ref_table": pl.String, "ref_id": pl.Int64,
}  # fmt: skip


def timeline(conn: Connection, customer_code: str) -> pl.DataFrame:
    """The customer's timeline, oldest first."""
    customer = customer_by_code(conn, customer_code)
    sql = """
        SELECT id, day, kind, actor, summary, ref_table, ref_id FROM timeline_events
        WHERE customer_id = :customer_id ORDER BY day, id
    """
    return query_frame(conn, sql, TIMELINE_SCHEMA, {"customer_id": customer.id})


COMMUNICATIONS_SCHEMA = {
    "id": pl.Int64, "as_of": pl.Date, "customer_code": pl.String, "customer_name": pl.String,
    "policy_code": pl.String, "level_code": pl.String, "channel": pl.String,
    "language": pl.String, "status": pl.String, "requires_approval_by": pl.String,
    "to_address": pl.String, "subject": pl.String, "currency": pl.String,
    "total_due_minor": pl.Int64, "penalties_minor": pl.Int64, "indemnities_minor": pl.Int64,
}  # fmt: skip


def list_communications(
    conn: Connection, status: str | None = None, customer_code: str | None = None
) -> pl.DataFrame:
    """Communications (optionally of one status / customer), newest first."""
    conditions, params = [], {}
    if status is not None:
        conditions.append("m.status = :status")
        params["status"] = status
    if customer_code is not None:
        conditions.append("c.code = :code")
        params["code"] = customer_code
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    sql = f"""
        SELECT m.id, m.as_of, c.code AS customer_code, c.name AS customer_name, m.policy_code,
               m.level_code, m.channel, m.language, m.status, m.requires_approval_by,
               m.to_address, m.subject, m.currency, m.total_due_minor, m.penalties_minor,
               m.indemnities_minor
        FROM communications m JOIN customers c ON c.id = m.customer_id
        {where}
        ORDER BY m.as_of DESC, m.id DESC
    """
    return query_frame(conn, sql, COMMUNICATIONS_SCHEMA, params)


__all__ = [
    "ActionError",
    "add_hold",
    "approve",
    "audit",
    "create_plan",
    "customer_by_code",
    "list_communications",
    "log_event",
    "open_dispute",
    "record_call",
    "record_promise",
    "resolve_dispute",
    "timeline",
]
