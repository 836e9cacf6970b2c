"""Tables shared by the dunning engine and the delivery channels.

- `dunning_runs`: one row per `encours dunning run` (as-of day); a second run for the
  same day creates nothing new.
- `communications`: the outbox. A communication is created as a draft by a run, approved
  (automatically or by the role the level requires), then delivered exactly once by
  `encours dunning send`: status draft -> approved -> sending -> sent | failed.
  The Message-ID is recorded before the SMTP transaction so a crash between sending and
  recording is detected and not sent twice.
- `communication_items`: the invoices a communication lists, with their amounts then.
- `timeline_events`: everything that happened to a customer, in order (communications,
  calls, promises, disputes, holds, notes, payments plans).
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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from encours.store.schema import Base, _now

COMMUNICATION_STATUSES = ("draft", "approved", "sending", "sent", "failed", "cancelled")
CHANNELS = ("email", "letter", "phone")


class DunningRun(Base):
    __tablename__ = "dunning_runs"
    __table_args__ = (UniqueConstraint("as_of", name="as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    summary: Mapped[dict | None] = mapped_column(JSON)


class Communication(Base):
    __tablename__ = "communications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'approved', 'sending', 'sent', 'failed', 'cancelled')",
            name="status",
        ),
        CheckConstraint("channel IN ('email', 'letter', 'phone')", name="channel"),
        # One communication per customer, level and run day: re-running creates nothing.
        UniqueConstraint("customer_id", "level_code", "as_of", name="customer_level_day"),
        Index("ix_communications_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("dunning_runs.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    policy_code: Mapped[str] = mapped_column(String(40))
    level_code: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(5), default="fr")
    status: Mapped[str] = mapped_column(String(10), default="draft")
    requires_approval_by: Mapped[str | None] = mapped_column(String(30))  # role
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    to_address: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    total_due_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    penalties_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    indemnities_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    message_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # approved: when a retry is due; sending: the end of the sender's lease (claimed_by)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # "host:pid" of the sender
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    document_path: Mapped[str | None] = mapped_column(String(500))  # letter / PDF produced
    tracking_number: Mapped[str | None] = mapped_column(String(100))  # registered letter
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class CommunicationItem(Base):
    __tablename__ = "communication_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    communication_id: Mapped[int] = mapped_column(ForeignKey("communications.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    open_minor: Mapped[int] = mapped_column(BigInteger)
    days_overdue: Mapped[int] = mapped_column(Integer)
    level_code: Mapped[str] = mapped_column(String(40))


class TimelineEvent(Base):
    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    day: Mapped[dt.date] = mapped_column(Date)  # the business day it concerns (as-of)
    kind: Mapped[str] = mapped_column(String(30))  # communication, call, promise, dispute...
    actor: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    ref_table: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict | None] = mapped_column(JSON)
