"""Pydantic schemas of the API (separate from the tables). Amounts are decimal strings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class Paged(BaseModel):
    total: int
    page: int
    per_page: int


class CustomerSummary(BaseModel):
    code: str
    name: str
    currency: str
    country: str | None = None
    segment: str | None = None
    account_owner: str | None = None
    collector: str | None = None
    payment_terms: str | None = None
    credit_limit: str | None = Field(None, description="Decimal string, customer's currency")
    balance: str
    overdue: str
    exposure: str
    headroom: str | None = None
    over_limit: bool
    open_invoices: int
    days_oldest_overdue: int | None = None


class CustomerPage(Paged):
    items: list[CustomerSummary]


class Contact(BaseModel):
    name: str
    role: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None


class Position(BaseModel):
    currency: str
    balance: str
    invoices_open: str
    not_due: str
    overdue: str
    unapplied_cash: str
    unapplied_credit: str
    exposure: str
    buckets: dict[str, str]
    open_invoices: int


class CustomerDetail(BaseModel):
    code: str
    name: str
    siren: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    currency: str
    payment_terms: str
    penalty_rate: str | None = None
    credit_limit: str | None = None
    segment: str | None = None
    account_owner: str | None = None
    collector: str | None = None
    as_of: dt.date
    positions: list[Position]
    kpis: dict[str, dict[str, float | int | None]]
    contacts: list[Contact]


class Invoice(BaseModel):
    number: str
    kind: str
    customer_code: str
    issue_date: dt.date
    due_date: dt.date
    amount: str
    open_amount: str | None = None
    currency: str
    disputed: bool
    status: str
    days_overdue: int | None = None


class InvoicePage(Paged):
    items: list[Invoice]


class PaymentOut(BaseModel):
    reference: str
    customer_code: str
    date: dt.date
    amount: str
    currency: str
    method: str | None = None


class PaymentPage(Paged):
    items: list[PaymentOut]


class CurrencyStatus(BaseModel):
    outstanding: str
    open_invoices_amount: str
    overdue: str
    unapplied_cash: str
    open_invoices: int


class Status(BaseModel):
    as_of: str
    customers: int
    invoices: int
    credit_notes: int
    payments: int
    open_invoices: int
    currency: str | None = None
    outstanding: str
    overdue: str
    by_currency: dict[str, CurrencyStatus]


class ImportResult(BaseModel):
    status: str
    kind: str
    source: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    details: dict[str, dict[str, int]]
    errors: list[str]


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    entity: str
    entity_key: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditPage(Paged):
    items: list[AuditOut]


class Me(BaseModel):
    name: str
    role: str
    kind: str
    owner_name: str | None = None
