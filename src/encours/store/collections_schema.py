"""Tables of the dunning engine: policies and their levels, policy assignments, and the
collector's actions that pause or steer dunning (promises, disputes, holds, payment plans,
call tasks).

- `dunning_policies` / `dunning_levels`: a policy is an ordered list of levels; a level
  says when (days relative to the due date, negative = courtesy reminder before it), how
  (channel, template), what is claimed (penalties, the 40 EUR indemnity), from which net
  amount, and who must approve it (None, `credit_manager`, `sales`).
- `dunning_assignments`: which policy applies, by `segment`, `risk_class` or `customer`
  (customer code); precedence customer > risk class > segment > the default policy.
- `promises`: a promise to pay (date, amount) pauses the customer until the date plus a
  grace period; kept or broken is decided by the payments received meanwhile.
- `disputes`: one row per dispute of an invoice (opened, resolved); `documents.disputed`
  is the current flag the engine reads.
- `dunning_holds`: "do not dun" with a reason and an end date.
- `payment_plans` / `payment_plan_instalments`: a schedule the customer follows
  instalment by instalment; dunning is paused while it is on track.
- `tasks`: work for the collector (phone calls), with a due day, a status and an outcome.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from encours.store.schema import Base, _now


class DunningPolicy(Base):
    __tablename__ = "dunning_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class DunningLevel(Base):
    __tablename__ = "dunning_levels"
    __table_args__ = (
        UniqueConstraint("policy_id", "code", name="uq_dunning_levels_policy_code"),
        UniqueConstraint("policy_id", "sequence", name="uq_dunning_levels_policy_sequence"),
        CheckConstraint("channel IN ('email', 'letter', 'phone')", name="channel"),
        CheckConstraint(
            "approval_role IS NULL OR approval_role IN ('credit_manager', 'sales')",
            name="approval_role",
        ),
        CheckConstraint("min_overdue_minor >= 0", name="min_overdue_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("dunning_policies.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    days: Mapped[int] = mapped_column(Integer)  # relative to the due date (-5 = D-5)
    channel: Mapped[str] = mapped_column(String(10))
    template: Mapped[str] = mapped_column(String(100))
    claim_penalties: Mapped[bool] = mapped_column(Boolean, default=False)
    claim_indemnity: Mapped[bool] = mapped_column(Boolean, default=False)
    min_overdue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    approval_role: Mapped[str | None] = mapped_column(String(30))


class DunningAssignment(Base):
    __tablename__ = "dunning_assignments"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_dunning_assignments_scope_key"),
        CheckConstraint("scope IN ('segment', 'risk_class', 'customer')", name="scope"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(100))  # segment, risk class code, customer code
    policy_id: Mapped[int] = mapped_column(ForeignKey("dunning_policies.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    actor: Mapped[str] = mapped_column(String(100), default="cli")


class Promise(Base):
    __tablename__ = "promises"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'kept', 'broken', 'cancelled')", name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    made_on: Mapped[dt.date] = mapped_column(Date)
    promised_date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    grace_days: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(10), default="open")
    settled_on: Mapped[dt.date | None] = mapped_column(Date)  # day it was found kept/broken
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    opened_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    resolved_on: Mapped[dt.date | None] = mapped_column(Date)
    resolution: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class DunningHold(Base):
    __tablename__ = "dunning_holds"
    __table_args__ = (CheckConstraint("until >= start", name="period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    start: Mapped[dt.date] = mapped_column(Date)
    until: Mapped[dt.date] = mapped_column(Date)  # inclusive
    reason: Mapped[str] = mapped_column(Text)
    released_on: Mapped[dt.date | None] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class PaymentPlan(Base):
    __tablename__ = "payment_plans"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'completed', 'broken', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    created_on: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    grace_days: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(10), default="active")
    settled_on: Mapped[dt.date | None] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class PaymentPlanInstalment(Base):
    __tablename__ = "payment_plan_instalments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("status IN ('due', 'paid', 'missed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id"), index=True)
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="due")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'done', 'cancelled')", name="status"),
        Index("ix_tasks_status_assignee", "status", "assignee"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    communication_id: Mapped[int | None] = mapped_column(ForeignKey("communications.id"))
    kind: Mapped[str] = mapped_column(String(20), default="call")
    assignee: Mapped[str | None] = mapped_column(String(100))  # the customer's collector
    due_day: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")
    outcome: Mapped[str | None] = mapped_column(String(20))  # reached, promised, ...
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
