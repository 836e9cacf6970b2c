"""Tables of the monitoring: alerts, the runs of `encours monitor`, the order-check log.

- `alerts`: one row per alert raised by `encours monitor` (`encours.risk.monitor`). `key`
  identifies the condition (kind + customer, invoice, promise, order...): at most one
  alert per key is not closed. `as_of` is the day it was first raised, `last_seen` the last
  day a run still found the condition. Status: open -> acknowledged (by someone, with a
  comment) -> closed (the condition cleared, or an acknowledged event left the lookback
  window, or it was re-raised because it worsened). `metric` is the measure compared to
  decide whether an acknowledged condition worsened (minor units, tenths of a day or basis
  points depending on the kind; see `risk.monitor`). `details` holds the facts as JSON.
- `monitor_runs`: one row per run (as-of day, counts per kind); the previous run's day
  bounds the window of "newly overdue" invoices.
- `order_checks`: the order checks recorded by `encours alerts order` (or any caller of
  `risk.monitor.record_order_check`): amount, decision and class at the time, read by the
  "large order for a risky customer" rule.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from encours.store.schema import Base, _now

ALERT_KINDS = (
    "limit_exceeded",
    "new_overdue",
    "dso_worsened",
    "broken_promise",
    "class_downgraded",
    "large_order",
    "review_overdue",
    "predicted_late",
)
ALERT_SEVERITIES = ("info", "warning", "critical")
ALERT_STATUSES = ("open", "acknowledged", "closed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(_in("severity", ALERT_SEVERITIES), name="severity"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        Index("ix_alerts_key_status", "key", "status"),
        Index("ix_alerts_status_assignee", "status", "assignee"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    key: Mapped[str] = mapped_column(String(200))
    as_of: Mapped[dt.date] = mapped_column(Date)  # the day it was first raised
    last_seen: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="open")
    assignee: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON)
    metric: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class MonitorRun(Base):
    __tablename__ = "monitor_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    summary: Mapped[dict | None] = mapped_column(JSON)


class OrderCheck(Base):
    __tablename__ = "order_checks"
    __table_args__ = (
        CheckConstraint("decision IN ('approve', 'warn', 'hold')", name="decision"),
        Index("ix_order_checks_as_of", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    decision: Mapped[str] = mapped_column(String(10))
    risk_class: Mapped[str | None] = mapped_column(String(1))
    exposure_minor: Mapped[int | None] = mapped_column(BigInteger)
    limit_minor: Mapped[int | None] = mapped_column(BigInteger)
    codes: Mapped[list | None] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
