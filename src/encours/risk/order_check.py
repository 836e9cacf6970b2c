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

from sqlalchemy import Connection, Date, TextClause, bindparam, select, text

from encours.i18n import _
from encours.money import from_minor, to_minor
from encours.risk.classes import DEFAULT_POLICY, RiskPolicy
from encours.risk.limits import CUSTOMERS
from encours.store import positions

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


_CUSTOMER_COLUMNS = (CUSTOMERS.c.id, CUSTOMERS.c.currency, CUSTOMERS.c.credit_limit_minor,
                     CUSTOMERS.c.in_insolvency, CUSTOMERS.c.is_consumer)  # fmt: skip
# built once (SQLAlchemy caches their compiled form): the check's statements are the same
# for every order, only the bound values change
_CUSTOMER_BY_CODE = select(*_CUSTOMER_COLUMNS).where(CUSTOMERS.c.code == bindparam("code"))
_CUSTOMER_OF_OWNER = _CUSTOMER_BY_CODE.where(CUSTOMERS.c.account_owner == bindparam("owner"))
_INPUTS: dict[str, TextClause] = {}  # per dialect


def _inputs_statement(conn: Connection) -> TextClause:
    """Every input of the decision but the customer row, in one statement: the aggregate of
    the customer's open invoices (the open-invoice query of `store.positions`), its
    unapplied cash and credit notes, its latest assessment on or before the day and its
    onboarding profile (each through its index)."""
    stmt = _INPUTS.get(conn.dialect.name)
    if stmt is not None:
        return stmt
    open_sql = positions._open_invoices_sql(conn, customer_filter=True)  # noqa: SLF001
    latest = ("SELECT r.{col} FROM risk_assessments r WHERE r.customer_id = :customer_id "
              "AND r.as_of <= :as_of ORDER BY r.as_of DESC LIMIT 1")  # fmt: skip
    sql = f"""
        SELECT o.open_minor, o.oldest_due, o.disputes,
               ({_UNAPPLIED_CASH}) AS cash, ({_UNAPPLIED_CREDIT}) AS credit,
               ({latest.format(col="risk_class")}) AS risk_class,
               ({latest.format(col="review_date")}) AS review_date,
               (SELECT cp.prepayment_required FROM customer_profiles cp
                WHERE cp.customer_id = :customer_id) AS prepayment
        FROM (
            SELECT COALESCE(SUM(o.open_minor), 0) AS open_minor,
                   MIN(CASE WHEN o.due_date < :as_of THEN o.due_date END) AS oldest_due,
                   COALESCE(SUM(CASE WHEN o.disputed = :yes AND o.open_minor > 0 THEN 1 ELSE 0
                                END), 0) AS disputes
            FROM ({open_sql}) o
            WHERE o.currency = :currency
        ) o
    """
    stmt = text(sql).bindparams(bindparam("as_of", type_=Date))
    _INPUTS[conn.dialect.name] = stmt
    return stmt


def _day(value: object) -> dt.date | None:
    if isinstance(value, str):  # SQLite
        return dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def check_order(
    conn: Connection,
    customer_code: str,
    amount: Decimal,
    as_of: dt.date,
    policy: RiskPolicy = DEFAULT_POLICY,
    *,
    owner_name: str | None = None,
) -> OrderDecision:
    """approve / warn / hold for an order of `amount` (customer's currency) on the day.

    Two reads: the customer row (by code; with `owner_name`, only a customer of that
    account owner: a sales user's own accounts), then every other input in one statement
    (`_inputs_statement`). LookupError when the customer is unknown (or not the owner's).
    """
    if owner_name is None:
        row = conn.execute(_CUSTOMER_BY_CODE, {"code": customer_code}).first()
    else:
        row = conn.execute(_CUSTOMER_OF_OWNER, {"code": customer_code, "owner": owner_name}
                           ).first()  # fmt: skip
    if row is None:
        raise LookupError(_("Unknown customer {code}").format(code=customer_code))
    customer_id, currency, limit_minor, in_insolvency, is_consumer = row
    if amount < 0:
        raise ValueError(f"order amount {amount} is negative")
    order = from_minor(to_minor(amount, currency), currency)
    params = {"as_of": as_of, "customer_id": customer_id, "currency": currency, "yes": True}
    (open_minor, oldest_due, disputes, cash, credit, risk_class, review_date,
     profile) = conn.execute(_inputs_statement(conn), params).one()  # fmt: skip
    oldest, review = _day(oldest_due), _day(review_date)
    exposure = from_minor(max(int(open_minor) - int(cash or 0) - int(credit or 0), 0), currency)
    days = (as_of - oldest).days if oldest else 0
    limit = None if limit_minor is None else from_minor(limit_minor, currency)
    result = OrderDecision("approve", currency, exposure, order, limit, risk_class=risk_class,
                           customer_id=customer_id)  # fmt: skip

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
    if days > policy.hold_overdue_days:
        add("hold", "overdue", _("An invoice is {days} days overdue (more than {n})").format(
            days=days, n=policy.hold_overdue_days))  # fmt: skip
    elif days > policy.warn_overdue_days:
        add("warn", "overdue", _("An invoice is {days} days overdue (more than {n})").format(
            days=days, n=policy.warn_overdue_days))  # fmt: skip
    if in_insolvency:
        add("hold", "insolvency", _("Customer in insolvency proceedings"))
    if profile:
        add("hold", "prepayment", _("Prepayment required for this customer"))
    if risk_class is None:  # the class is never null in an assessment: never assessed
        add("warn", "not_assessed", _("Customer never assessed"))
    else:
        if risk_class == "E":
            add("hold", "class_e", _("Risk class E"))
        elif risk_class == "D":
            add("warn", "class_d", _("Risk class D"))
        if review is not None and review < as_of:
            add("warn", "review_expired", _("Credit review expired on {day}").format(
                day=review.isoformat()))  # fmt: skip
    if disputes:
        add("warn", "dispute", _("{n} open disputed invoice(s)").format(n=int(disputes)))
    if is_consumer:
        add("warn", "consumer", _("Consumer customer: ask for payment with the order"))
    return result
