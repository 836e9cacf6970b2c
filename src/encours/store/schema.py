"""SQLAlchemy models of the ledger: the only description of the tables.

Money columns are integers in minor units (`*_minor`) next to a `currency` column, so that
sums are exact on SQLite and PostgreSQL alike. Dates are `Date`. Rates are stored as
decimal strings (`DecimalText`) because SQLite has no exact decimal type.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DecimalText(TypeDecorator):
    """An exact decimal kept as text (SQLite has no exact numeric type)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    if TYPE_CHECKING:  # every model is mapped to a Table (not any FromClause)
        __table__: ClassVar[Table]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # the source's customer id
    name: Mapped[str] = mapped_column(String(200))
    siren: Mapped[str | None] = mapped_column(String(9))
    siret: Mapped[str | None] = mapped_column(String(14))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    address_line1: Mapped[str | None] = mapped_column(String(200))  # postal address
    address_line2: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    payment_terms: Mapped[str] = mapped_column(String(60), default="30 days net")
    penalty_rate: Mapped[Decimal | None] = mapped_column(DecimalText())  # percent per year
    deposit_required: Mapped[bool] = mapped_column(Boolean, default=False)
    retention_of_title: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_limit_minor: Mapped[int | None] = mapped_column(BigInteger)
    segment: Mapped[str | None] = mapped_column(String(60))
    account_owner: Mapped[str | None] = mapped_column(String(100))
    collector: Mapped[str | None] = mapped_column(String(100))
    is_consumer: Mapped[bool] = mapped_column(Boolean, default=False)
    in_insolvency: Mapped[bool] = mapped_column(Boolean, default=False)
    insolvency_date: Mapped[dt.date | None] = mapped_column(Date)  # day of the judgment
    insolvency_kind: Mapped[str | None] = mapped_column(String(20))  # sauvegarde, redressement...
    paperless_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(5), default="fr")


class Document(Base):
    """An invoice or a credit note (kind). Amounts are positive, incl. VAT."""

    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint("kind IN ('invoice', 'credit_note')", name="kind"),
        CheckConstraint("amount_minor >= 0", name="amount_positive"),
        Index("ix_documents_customer_due", "customer_id", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(12), default="invoice")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="issued")  # issued | cancelled
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    reference: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(20))  # paper | electronic
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # a customer's payments, latest first (the customer page), and every lookup by
        # customer_id (its prefix)
        Index("ix_payments_customer_date", "customer_id", "date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)  # payment_id of the source
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Allocation(Base):
    """Lettrage: part of a payment or of a credit note applied to one invoice.

    The allocation takes effect on `date` (the later of the payment or credit-note date
    and the invoice's issue date), so positions replayed for an earlier day ignore it.
    """

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("(payment_id IS NULL) <> (credit_note_id IS NULL)", name="one_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # indexed by ix_allocations_invoice_date (invoice_id, date, amount_minor), below
    invoice_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    date: Mapped[dt.date] = mapped_column(Date)


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(100), default="cli")
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class AuditEntry(Base):
    """Append-only log of every change: who, when, what, before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_key: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)


class ReferenceRate(Base):
    """Reference rates that change over time: ECB refinancing rate, French legal rate."""

    __tablename__ = "reference_rates"
    __table_args__ = (UniqueConstraint("kind", "valid_from", name="kind_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # ecb | legal_pro | legal_consumer
    valid_from: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(DecimalText())  # percent per year
    note: Mapped[str | None] = mapped_column(Text)


class CustomerSnapshot(Base):
    """Month-end position of a customer, kept for trends."""

    __tablename__ = "customer_snapshots"
    __table_args__ = (UniqueConstraint("as_of", "customer_id", name="as_of_customer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    overdue_minor: Mapped[int] = mapped_column(BigInteger)
    buckets: Mapped[dict] = mapped_column(JSON)


class PortfolioSnapshot(Base):
    """Month-end portfolio KPIs (DSO, CEI, ...) kept for trends."""

    __tablename__ = "portfolio_snapshots"
    __table_args__ = (UniqueConstraint("as_of", "currency", name="as_of_currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    kpis: Mapped[dict] = mapped_column(JSON)


Index(
    "ix_allocations_invoice_date", Allocation.invoice_id, Allocation.date, Allocation.amount_minor
)
