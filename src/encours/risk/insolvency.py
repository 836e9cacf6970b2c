"""Collective insolvency proceedings of a customer (sauvegarde, redressement, liquidation).

A credit manager records the judgment (day and kind) when it is published; the customer is
then `in_insolvency`, which the rest of the product reads:

* no late-payment penalties nor 40 EUR indemnity (domain.penalties, statements, the formal
  notice and the legal file), risk class E, orders on hold, ECL at 100 %;
* the claim must be declared to the mandataire judiciaire within 2 months of the BODACC
  publication of the judgment: declaring the proceedings creates a `declare_claim` task for
  the credit manager, due two months after the judgment day (the publication comes later,
  so the task is never late by the law's count).

Declaring writes nothing else (no dunning hold: the dunning engine reads the flag itself).
Both use cases take the caller's open connection (one unit of work), update the customer,
append a timeline event and an audit entry with the state before and after.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, select, update

from encours.collections.actions import ActionError, audit, log_event
from encours.i18n import _
from encours.store.collections_schema import Task
from encours.store.db import inserted_id
from encours.store.schema import Customer, _now

CUSTOMERS = Customer.__table__
TASKS = Task.__table__

KINDS: tuple[str, ...] = ("sauvegarde", "redressement", "liquidation")
CLAIM_DEADLINE_MONTHS = 2
TASK_KIND = "declare_claim"
TASK_ASSIGNEE = "credit_manager"  # the role that declares claims (no named person)
EVENT_KIND = "insolvency"


class InsolvencyError(ActionError):
    """Proceedings that cannot be recorded (unknown customer, unknown kind, ...)."""


def parse_kind(value: str) -> str:
    """The canonical kind: `sauvegarde`, `redressement` or `liquidation` (case and a trailing
    "judiciaire" ignored); InsolvencyError otherwise."""
    text = " ".join(str(value or "").strip().lower().split())
    text = text.removesuffix(" judiciaire")
    if text not in KINDS:
        raise InsolvencyError(
            _("unknown insolvency proceedings {kind!r}: expected {kinds}").format(
                kind=value, kinds=", ".join(KINDS)
            )
        )
    return text


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus `months` calendar months (the 31st becomes the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month,
                       day=min(day.day, calendar.monthrange(year, month)[1]))  # fmt: skip


def claim_deadline(judgment_day: dt.date) -> dt.date:
    return add_months(judgment_day, CLAIM_DEADLINE_MONTHS)


def _customer(conn: Connection, code: str) -> Any:
    row = conn.execute(
        select(CUSTOMERS.c.id, CUSTOMERS.c.code, CUSTOMERS.c.name, CUSTOMERS.c.in_insolvency,
               CUSTOMERS.c.insolvency_date, CUSTOMERS.c.insolvency_kind)
        .where(CUSTOMERS.c.code == code)
    ).first()  # fmt: skip
    if row is None:
        raise InsolvencyError(_("unknown customer {code!r}").format(code=code))
    return row


def _state(in_insolvency: bool, day: dt.date | None, kind: str | None) -> dict:
    return {
        "in_insolvency": bool(in_insolvency),
        "insolvency_date": None if day is None else day.isoformat(),
        "insolvency_kind": kind,
    }


def _open_claim_task(conn: Connection, customer_id: int) -> Any:
    return conn.execute(
        select(TASKS.c.id, TASKS.c.due_day).where(
            TASKS.c.customer_id == customer_id, TASKS.c.kind == TASK_KIND,
            TASKS.c.status == "open",
        ).order_by(TASKS.c.id)
    ).first()  # fmt: skip


def declare_insolvency(
    conn: Connection, code: str, day: dt.date, kind: str, actor: str
) -> dict[str, Any]:
    """Record that the customer `code` entered insolvency proceedings `kind` by a judgment
    of `day`. Creates the "declare the claim" task unless one is already open (a
    redressement converted into a liquidation keeps the declared claim). Declaring the same
    proceedings again changes nothing. Returns the new state with `changed`, `task_id` and
    `task_due`."""
    kind = parse_kind(kind)
    c = _customer(conn, code)
    before = _state(c.in_insolvency, c.insolvency_date, c.insolvency_kind)
    after = _state(True, day, kind)
    changed = before != after
    if changed:
        conn.execute(
            update(CUSTOMERS).where(CUSTOMERS.c.id == c.id)
            .values(in_insolvency=True, insolvency_date=day, insolvency_kind=kind,
                    updated_at=_now())
        )  # fmt: skip
    task = _open_claim_task(conn, c.id)
    if task is None:
        due = claim_deadline(day)
        note = _(
            "Declare the claim to the mandataire judiciaire ({kind} judgment of {day}), "
            "within 2 months of its BODACC publication"
        ).format(kind=kind, day=day.isoformat())
        task_id = int(inserted_id(conn.execute(insert(TASKS).values(
            customer_id=c.id, kind=TASK_KIND, assignee=TASK_ASSIGNEE, due_day=due,
            status="open", note=note,
        ))))  # fmt: skip
        changed = True
    else:
        task_id, due = int(task.id), task.due_day
    if changed:
        log_event(conn, c.id, day, EVENT_KIND, actor,
                  _("Insolvency proceedings ({kind}) opened on {day}; declare the claim by "
                    "{due}").format(kind=kind, day=day.isoformat(), due=due.isoformat()),
                  "tasks", task_id, {**after, "task_due": due.isoformat()})  # fmt: skip
        audit(conn, actor, "insolvency.declare", "customer", code, before,
              {**after, "task_id": task_id, "task_due": due.isoformat()})  # fmt: skip
    return {"customer": code, **after, "changed": changed, "task_id": task_id,
            "task_due": due.isoformat()}  # fmt: skip


def end_insolvency(conn: Connection, code: str, day: dt.date, actor: str) -> dict[str, Any]:
    """Record the end of the customer's proceedings on `day` (plan completed, judgment
    reversed, ...): the flag, the judgment day and the kind are cleared and the open
    "declare the claim" task is cancelled. Returns the new state with `changed` and the
    cancelled task ids; InsolvencyError when the customer is not in proceedings."""
    c = _customer(conn, code)
    if not c.in_insolvency:
        raise InsolvencyError(
            _("customer {code!r} is not in insolvency proceedings").format(code=code)
        )
    before = _state(c.in_insolvency, c.insolvency_date, c.insolvency_kind)
    after = _state(False, None, None)
    conn.execute(
        update(CUSTOMERS).where(CUSTOMERS.c.id == c.id)
        .values(in_insolvency=False, insolvency_date=None, insolvency_kind=None,
                updated_at=_now())
    )  # fmt: skip
    cancelled = list(conn.execute(
        select(TASKS.c.id).where(TASKS.c.customer_id == c.id, TASKS.c.kind == TASK_KIND,
                                 TASKS.c.status == "open")
    ).scalars())  # fmt: skip
    if cancelled:
        conn.execute(
            update(TASKS).where(TASKS.c.id.in_(cancelled))
            .values(status="cancelled", done_at=_now())
        )  # fmt: skip
    log_event(conn, c.id, day, EVENT_KIND, actor,
              _("Insolvency proceedings ended on {day}").format(day=day.isoformat()),
              data={**after, "ended_on": day.isoformat()})  # fmt: skip
    audit(conn, actor, "insolvency.end", "customer", code, before,
          {**after, "ended_on": day.isoformat()})  # fmt: skip
    return {"customer": code, **after, "changed": True, "ended_on": day.isoformat(),
            "cancelled_tasks": cancelled}  # fmt: skip


__all__ = [
    "CLAIM_DEADLINE_MONTHS", "KINDS", "TASK_KIND", "InsolvencyError", "add_months",
    "claim_deadline", "declare_insolvency", "end_insolvency", "parse_kind",
]  # fmt: skip
