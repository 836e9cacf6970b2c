"""Tables of the credit-risk module.

- `customer_profiles`: what onboarding records about a customer beyond the ledger's
  `customers` row (legal form, date of creation, sector, checklist, prepayment, doubtful
  account provision), one row per customer.
- `financial_statements`: one row per customer and financial year; every amount is
  nullable in minor units (a missing line is NULL, never 0).
- `risk_assessments`: the history of risk classes (one row per customer and as-of day),
  with the components, the reasons (codes + parameters, rendered in the user's language)
  and the date of the next regular review.
- `limit_requests`: a change of credit limit asked for, then approved or rejected by the
  credit manager; the change of `customers.credit_limit_minor` is audited.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from encours.store.schema import Base, DecimalText, _now

# The amounts of a financial statement (column = f"{name}_minor").
STATEMENT_FIELDS: tuple[str, ...] = (
    "revenue",
    "value_added",
    "personnel_expenses",
    "ebe",
    "ebit",
    "financial_expenses",
    "net_income",
    "total_assets",
    "current_assets",
    "inventories",
    "current_liabilities",
    "total_liabilities",
    "long_term_debt",
    "equity",
    "retained_earnings",
    "working_capital",
    "receivables",
    "payables",
)


class CustomerProfile(Base):
    __tablename__ = "customer_profiles"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    legal_form: Mapped[str | None] = mapped_column(String(40))
    created_on: Mapped[dt.date | None] = mapped_column(Date)  # date of creation of the firm
    sector: Mapped[str | None] = mapped_column(String(60))  # NAF code or free text
    checklist: Mapped[dict | None] = mapped_column(JSON)  # {item: true/false}
    prepayment_required: Mapped[bool] = mapped_column(Boolean, default=False)
    doubtful_rate: Mapped[Decimal | None] = mapped_column(DecimalText())  # percent provided
    onboarded_on: Mapped[dt.date | None] = mapped_column(Date)
    onboarded_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)


class FinancialStatement(Base):
    __tablename__ = "financial_statements"
    __table_args__ = (UniqueConstraint("customer_id", "fiscal_year", name="customer_year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    revenue_minor: Mapped[int | None] = mapped_column(BigInteger)
    value_added_minor: Mapped[int | None] = mapped_column(BigInteger)
    personnel_expenses_minor: Mapped[int | None] = mapped_column(BigInteger)
    ebe_minor: Mapped[int | None] = mapped_column(BigInteger)
    ebit_minor: Mapped[int | None] = mapped_column(BigInteger)
    financial_expenses_minor: Mapped[int | None] = mapped_column(BigInteger)
    net_income_minor: Mapped[int | None] = mapped_column(BigInteger)
    total_assets_minor: Mapped[int | None] = mapped_column(BigInteger)
    current_assets_minor: Mapped[int | None] = mapped_column(BigInteger)
    inventories_minor: Mapped[int | None] = mapped_column(BigInteger)
    current_liabilities_minor: Mapped[int | None] = mapped_column(BigInteger)
    total_liabilities_minor: Mapped[int | None] = mapped_column(BigInteger)
    long_term_debt_minor: Mapped[int | None] = mapped_column(BigInteger)
    equity_minor: Mapped[int | None] = mapped_column(BigInteger)
    retained_earnings_minor: Mapped[int | None] = mapped_column(BigInteger)
    working_capital_minor: Mapped[int | None] = mapped_column(BigInteger)
    receivables_minor: Mapped[int | None] = mapped_column(BigInteger)
    payables_minor: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)


class RiskAssessment(Base):
    __tablename__ = "risk_assessments"
    __table_args__ = (
        CheckConstraint("risk_class IN ('A', 'B', 'C', 'D', 'E')", name="risk_class"),
        UniqueConstraint("customer_id", "as_of", name="customer_as_of"),
        Index("ix_risk_assessments_review", "review_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    risk_class: Mapped[str] = mapped_column(String(1))
    previous_class: Mapped[str | None] = mapped_column(String(1))
    altman_z: Mapped[float | None] = mapped_column(Float)
    altman_zone: Mapped[str | None] = mapped_column(String(10))
    conan_holder_z: Mapped[float | None] = mapped_column(Float)
    conan_holder_zone: Mapped[str | None] = mapped_column(String(10))
    behaviour_points: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[list | None] = mapped_column(JSON)  # [{"code": ..., "params": {...}}]
    review_date: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20), default="assess")  # assess | onboarding
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


# the latest assessment of one customer, read by the order check through this index
Index("ix_risk_assessments_customer_as_of", RiskAssessment.customer_id, RiskAssessment.as_of)


class LimitRequest(Base):
    __tablename__ = "limit_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("requested_minor >= 0", name="requested_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    current_minor: Mapped[int | None] = mapped_column(BigInteger)
    requested_minor: Mapped[int | None] = mapped_column(BigInteger)  # None: no limit
    recommended_minor: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
