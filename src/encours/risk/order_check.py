"""The credit check of a new order: approve, warn or hold, with its reasons.

Only the ordering customer is read, through indexes (documents by customer, allocations
by invoice or payment, payments by customer, the latest assessment by customer and day):
no portfolio computation, so the answer takes milliseconds on a ledger of millions of
invoices. Exposure = max(open invoices - unapplied cash - unapplied credit notes, 0) in the
customer's currency, as in `analytics.portfolio`; open invoices come from
the open-invoice query of `store.positions` (the one aging computation).

Rules (`RiskPolicy` of `risk.classes`), the decision is the most severe one:

- hold: exposure + order over the credit limit (a limit of 0 included); an invoice
  overdue more than `hold_overdue_days`; class E; insolvency proceedings; prepayment
  required by onboarding;
- warn: exposure + order over `warn_usage` of the limit; no credit limit set; an invoice
  overdue more than `warn_overdue_days`; class D; an open disputed invoice; the regular
  review expired or the customer never assessed; a consumer (no trade credit by default:
  ask for payment with the order);
- approve otherwise.

Callers log each check (`risk.monitor.record_order_check`, one insert in the same
transaction: `check_and_record_order`) so that the monitor's "large order for a risky
customer" rule sees it; a what-if check is not logged (`--no-record`, `record=false`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, Date, bindparam, select, text

from encours.i18n import _
from encours.money import from_minor, to_minor
from encours.risk.classes import DEFAULT_POLICY, RiskPolicy, latest_assessment
from encours.risk.limits import find_customer
from encours.store import positions
from encours.store.risk_schema import CustomerProfile

SEVERITY = {"approve": 0, "warn": 1, "hold": 2}

_UNAPPLIED_CASH = """
    SELECT COALESCE(SUM(p.amount_minor - COALESCE((
        SELECT SUM(a.amount_minor) FROM allocations a
        WHERE a.payment_id = p.id AND a.date <= :as_of), 0)), 0)
    FROM payments p
    WHERE p.customer_id = :customer_id AND p.date <= :as_of AND p.currency = :currency
"""
_UNAPPLIED_CREDIT = """
    SELECT COALESCE(SUM(d.amount_minor - COALESCE((
        SELECT SUM(a.amount_minor) FROM allocations a
        WHERE a.credit_note_id = d.id AND a.date <= :as_of), 0)), 0)
    FROM documents d
    WHERE d.customer_id = :customer_id AND d.kind = 'credit_note' AND d.status <> 'cancelled'
      AND d.issue_date <= :as_of AND d.currency = :currency
"""


@dataclass
class OrderDecision:
    decision: str
    currency: str
    exposure: Decimal
    order: Decimal
    limit: Decimal | None
    reasons: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    risk_class: str | None = None
    customer_id: int | None = None  # the customer's row id (for the order-check log)

    @property
    def headroom_after(self) -> Decimal | None:
        return None if self.limit is None else self.limit - self.exposure - self.order

    def as_dict(self) -> dict:
        headroom = self.headroom_after
        return {
            "decision": self.decision, "reasons": self.reasons, "codes": self.codes,
            "exposure": str(self.exposure), "limit": None if self.limit is None
            else str(self.limit), "order": str(self.order),
            "headroom_after": None if headroom is None else str(headroom),
            "currency": self.currency, "risk_class": self.risk_class,
        }  # fmt: skip


def _scalar(conn: Connection, sql: str, params: dict) -> int:
    stmt = text(sql).bindparams(bindparam("as_of", type_=Date))
    return int(conn.execute(stmt, params).scalar() or 0)


def customer_exposure(conn: Connection, customer_id: int, currency: str, as_of: dt.date) -> dict:
    """One customer's exposure, overdue and disputes as of the day (minor units).

    One aggregate over the customer's open invoices (the open-invoice query of
    `store.positions`, filtered on the customer so that it runs through its index): no
    frame is built, the answer is a handful of integers.
    """
    # the positions module's own SQL (private there; the one definition of an open invoice)
    open_sql = positions._open_invoices_sql(conn, customer_filter=True)  # noqa: SLF001
    sql = f"""
        SELECT COALESCE(SUM(o.open_minor), 0),
               COALESCE(SUM(CASE WHEN o.due_date < :as_of THEN o.open_minor ELSE 0 END), 0),
               MIN(CASE WHEN o.due_date < :as_of THEN o.due_date END),
               COALESCE(SUM(CASE WHEN o.disputed = :yes AND o.open_minor > 0 THEN 1 ELSE 0 END),
                        0)
        FROM ({open_sql}) o
        WHERE o.currency = :currency
    """
    params = {"as_of": as_of, "customer_id": customer_id, "currency": currency, "yes": True}
    stmt = text(sql).bindparams(bindparam("as_of", type_=Date))
    open_minor, overdue_minor, oldest_due, disputes = conn.execute(stmt, params).one()
    if isinstance(oldest_due, str):  # SQLite
        oldest_due = dt.date.fromisoformat(oldest_due)
    cash = _scalar(conn, _UNAPPLIED_CASH, params)
    credit = _scalar(conn, _UNAPPLIED_CREDIT, params)
    return {
        "open_minor": int(open_minor),
        "exposure_minor": max(int(open_minor) - cash - credit, 0),
        "overdue_minor": int(overdue_minor),
        "max_days_overdue": (as_of - oldest_due).days if oldest_due else 0,
        "open_disputes": int(disputes),
    }


def check_order(
    conn: Connection,
    customer_code: str,
    amount: Decimal,
    as_of: dt.date,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> OrderDecision:
    """approve / warn / hold for an order of `amount` (customer's currency) on the day."""
    customer = find_customer(conn, customer_code)
    currency = customer["currency"]
    order = from_minor(to_minor(amount, currency), currency)
    position = customer_exposure(conn, customer["id"], currency, as_of)
    exposure = from_minor(position["exposure_minor"], currency)
    limit_minor = customer["credit_limit_minor"]
    limit = None if limit_minor is None else from_minor(limit_minor, currency)
    assessment = latest_assessment(conn, customer["id"], as_of)
    profile = conn.execute(select(CustomerProfile.prepayment_required).where(
        CustomerProfile.customer_id == customer["id"])).scalar()  # fmt: skip
    result = OrderDecision("approve", currency, exposure, order, limit,
                           risk_class=assessment["risk_class"] if assessment else None,
                           customer_id=customer["id"])  # fmt: skip

    def add(level: str, code: str, message: str) -> None:
        result.codes.append(code)
        result.reasons.append(message)
        if SEVERITY[level] > SEVERITY[result.decision]:
            result.decision = level

    after = exposure + order
    if limit is None:
        add("warn", "no_limit", _("No credit limit set"))
    elif after > limit:
        add("hold", "over_limit", _("Exposure {exposure} + order {order} = {total} exceeds the "
                                    "credit limit {limit}").format(
            exposure=exposure, order=order, total=after, limit=limit))  # fmt: skip
    elif after > limit * policy.warn_usage:
        add("warn", "near_limit", _("Exposure after the order uses {pct} % of the credit limit")
            .format(pct=(after / limit * 100).quantize(Decimal(1))))  # fmt: skip
    days = position["max_days_overdue"]
    if days > policy.hold_overdue_days:
        add("hold", "overdue", _("An invoice is {days} days overdue (more than {n})").format(
            days=days, n=policy.hold_overdue_days))  # fmt: skip
    elif days > policy.warn_overdue_days:
        add("warn", "overdue", _("An invoice is {days} days overdue (more than {n})").format(
            days=days, n=policy.warn_overdue_days))  # fmt: skip
    if customer["in_insolvency"]:
        add("hold", "insolvency", _("Customer in insolvency proceedings"))
    if profile:
        add("hold", "prepayment", _("Prepayment required for this customer"))
    if assessment is None:
        add("warn", "not_assessed", _("Customer never assessed"))
    else:
        if assessment["risk_class"] == "E":
            add("hold", "class_e", _("Risk class E"))
        elif assessment["risk_class"] == "D":
            add("warn", "class_d", _("Risk class D"))
        if assessment["review_date"] < as_of:
            add("warn", "review_expired", _("Credit review expired on {day}").format(
                day=assessment["review_date"].isoformat()))  # fmt: skip
    if position["open_disputes"]:
        add("warn", "dispute", _("{n} open disputed invoice(s)").format(
            n=position["open_disputes"]))  # fmt: skip
    if customer["is_consumer"]:
        add("warn", "consumer", _("Consumer customer: ask for payment with the order"))
    return result
