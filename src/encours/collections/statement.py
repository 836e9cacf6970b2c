"""Statement of account (relevé de compte) of one customer as of a day.

Everything comes from the ledger's positions (`encours.store.positions`, the one place
where open amounts are computed): the open invoices with their open amount and days
overdue, the unapplied cash and unapplied credit notes that are netted against them.

- balance = open invoices - unapplied cash - unapplied credit notes
- aging: the open invoices split by the default buckets of `encours.domain.aging`
  (not due when the due date is on or after the as-of day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl
from sqlalchemy import Connection, select

from encours.collections.pdf import DocumentError, check_language, render_pdf
from encours.company import CompanyProfile, load_company
from encours.domain.aging import DEFAULT_SPEC, parse_buckets
from encours.store import positions
from encours.store.collections_schema import PaymentPlan, PaymentPlanInstalment
from encours.store.schema import Contact, Customer

CUSTOMERS = Customer.__table__
CONTACTS = Contact.__table__
PLANS = PaymentPlan.__table__
INSTALMENTS = PaymentPlanInstalment.__table__


@dataclass(frozen=True)
class CustomerInfo:
    """What a document prints about the debtor."""

    id: int
    code: str
    name: str
    siren: str | None
    vat_number: str | None
    country: str | None
    currency: str
    penalty_rate: Decimal | None  # percent per year
    is_consumer: bool
    in_insolvency: bool
    contact_name: str | None = None
    contact_email: str | None = None
    contact_language: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None

    @property
    def postal_lines(self) -> list[str]:
        """The postal address alone (street lines, "postal code city", foreign country);
        empty parts are left out, so a customer without an address prints nothing."""
        lines = [part.strip() for part in (self.address_line1, self.address_line2) if part]
        town = " ".join(part.strip() for part in (self.postal_code, self.city) if part)
        if town:
            lines.append(town)
        country = (self.country or "").strip()
        if country and (country.upper() != "FR" or not lines):
            lines.append(country)
        return [line for line in lines if line]

    @property
    def address_lines(self) -> list[str]:
        """The block printed in the letter's window: name, contact, postal address."""
        lines = [self.name]
        if self.contact_name:
            lines.append(self.contact_name)
        return lines + self.postal_lines


def load_customer(conn: Connection, customer_id: int) -> CustomerInfo:
    row = conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.id == customer_id)).mappings().first()
    if row is None:
        raise DocumentError(f"unknown customer id {customer_id}")
    contact = (
        conn.execute(
            select(CONTACTS.c.name, CONTACTS.c.email, CONTACTS.c.language)
            .where(CONTACTS.c.customer_id == customer_id)
            .order_by(CONTACTS.c.id)
        )
        .mappings()
        .first()
    )
    return CustomerInfo(
        id=row["id"],
        code=row["code"],
        name=row["name"],
        siren=row["siren"],
        vat_number=row["vat_number"],
        country=row["country"],
        currency=row["currency"],
        penalty_rate=row["penalty_rate"],
        is_consumer=bool(row["is_consumer"]),
        in_insolvency=bool(row["in_insolvency"]),
        contact_name=contact["name"] if contact else None,
        contact_email=contact["email"] if contact else None,
        contact_language=contact["language"] if contact else None,
        address_line1=row["address_line1"],
        address_line2=row["address_line2"],
        postal_code=row["postal_code"],
        city=row["city"],
    )


def find_customer_id(conn: Connection, code: str) -> int:
    """The id of the customer whose code (the source system's id) is `code`."""
    customer_id = conn.execute(
        select(CUSTOMERS.c.id).where(CUSTOMERS.c.code == code)
    ).scalar_one_or_none()
    if customer_id is None:
        raise DocumentError(f"unknown customer {code!r}")
    return customer_id


@dataclass(frozen=True)
class AgingLine:
    label: str  # "not_due" or a bucket label such as "1-30"
    amount_minor: int


@dataclass(frozen=True)
class Statement:
    customer: CustomerInfo
    company: CompanyProfile
    as_of: dt.date
    currency: str
    invoices: list[dict]  # number, issue_date, due_date, amount_minor, open_minor, days_overdue
    invoices_open_minor: int
    overdue_minor: int
    unapplied_cash_minor: int
    unapplied_credit_minor: int
    aging: list[AgingLine] = field(default_factory=list)

    @property
    def balance_minor(self) -> int:
        return self.invoices_open_minor - self.unapplied_cash_minor - self.unapplied_credit_minor


def _aging(frame: pl.DataFrame, as_of: dt.date) -> list[AgingLine]:
    """Open amounts by bucket, with the bucket bounds of `encours.domain.aging`."""
    lines = [
        AgingLine("not_due", int(frame.filter(pl.col("due_date") >= as_of)["open_minor"].sum()))
    ]
    for bucket in parse_buckets(DEFAULT_SPEC):
        earliest, latest = bucket.due_date_range(as_of)
        cond = pl.col("due_date") <= latest
        if earliest is not None:
            cond = cond & (pl.col("due_date") >= earliest)
        lines.append(AgingLine(bucket.label, int(frame.filter(cond)["open_minor"].sum())))
    return lines


def build_statement(conn: Connection, customer_id: int, as_of: dt.date) -> Statement:
    """The statement's figures (see the module docstring)."""
    customer = load_customer(conn, customer_id)
    invoices = positions.open_invoices(conn, as_of, customer_id=customer_id)
    unapplied = positions.unapplied_by_customer(conn, as_of, customer_id).filter(
        pl.col("customer_id") == customer_id
    )
    currencies = set(invoices["currency"].to_list()) | set(unapplied["currency"].to_list())
    currency = customer.currency if len(currencies) != 1 else currencies.pop()
    invoices = invoices.filter(pl.col("currency") == currency)
    unapplied = unapplied.filter(pl.col("currency") == currency)
    cash = int(unapplied["unapplied_cash_minor"].fill_null(0).sum())
    credit = int(unapplied["unapplied_credit_minor"].fill_null(0).sum())
    rows = invoices.select(
        "number", "issue_date", "due_date", "amount_minor", "open_minor", "days_overdue",
        "disputed",
    ).to_dicts()  # fmt: skip
    return Statement(
        customer=customer,
        company=load_company(),
        as_of=as_of,
        currency=currency,
        invoices=rows,
        invoices_open_minor=int(invoices["open_minor"].sum()),
        overdue_minor=int(invoices.filter(pl.col("due_date") < as_of)["open_minor"].sum()),
        unapplied_cash_minor=cash,
        unapplied_credit_minor=credit,
        aging=_aging(invoices, as_of),
    )


def statement_of_account_pdf(
    conn: Connection, customer_id: int, as_of: dt.date, language: str = "fr"
) -> bytes:
    """The statement of account of `customer_id` as of `as_of`, as PDF bytes."""
    statement = build_statement(conn, customer_id, as_of)
    return render_pdf("statement.html", check_language(language), s=statement)


@dataclass(frozen=True)
class PlanLetter:
    """A payment-plan proposal: the plan's instalments, to be signed by the customer."""

    customer: CustomerInfo
    company: CompanyProfile
    as_of: dt.date
    plan_id: int
    currency: str
    grace_days: int
    instalments: list[dict]  # due_date, amount_minor

    @property
    def total_minor(self) -> int:
        return sum(int(i["amount_minor"]) for i in self.instalments)

    @property
    def reference(self) -> str:
        return f"PLAN-{self.plan_id}"


def build_plan_letter(conn: Connection, plan_id: int, as_of: dt.date) -> PlanLetter:
    """The proposal letter of payment plan `plan_id` (see `collections.actions.create_plan`)."""
    plan = conn.execute(select(PLANS).where(PLANS.c.id == plan_id)).mappings().first()
    if plan is None:
        raise DocumentError(f"unknown payment plan {plan_id}")
    instalments = [
        dict(r)
        for r in conn.execute(
            select(INSTALMENTS.c.due_date, INSTALMENTS.c.amount_minor)
            .where(INSTALMENTS.c.plan_id == plan_id)
            .order_by(INSTALMENTS.c.due_date)
        ).mappings()
    ]
    return PlanLetter(
        customer=load_customer(conn, plan["customer_id"]),
        company=load_company(),
        as_of=as_of,
        plan_id=plan_id,
        currency=plan["currency"],
        grace_days=int(plan["grace_days"]),
        instalments=instalments,
    )


def payment_plan_letter_pdf(
    conn: Connection, plan_id: int, as_of: dt.date, language: str = "fr"
) -> bytes:
    """The payment-plan proposal letter (debtor's address block, schedule) as PDF bytes."""
    letter = build_plan_letter(conn, plan_id, as_of)
    return render_pdf("payment_plan.html", check_language(language), p=letter)


__all__ = [
    "AgingLine",
    "CustomerInfo",
    "PlanLetter",
    "Statement",
    "build_plan_letter",
    "build_statement",
    "find_customer_id",
    "load_customer",
    "payment_plan_letter_pdf",
    "statement_of_account_pdf",
]
