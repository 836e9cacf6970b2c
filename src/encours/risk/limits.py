"""Credit limits: the policy's recommendation, and changes as requests approved by the
credit manager (every change audited).

Recommendation (amounts in the customer's currency, `RiskPolicy` of `risk.classes`):

- capacity = min(equity x equity_share[class], revenue x revenue_share[class]) from the
  latest financial statements (the lines that are known; negative equity gives 0);
  without statements, capacity = initial_limit[class];
- need = predicted exposure x exposure_factor[class], with predicted exposure = the last
  12 months' sales / 365 x max(weighted average days to pay, min_days_to_pay): what the
  customer owes on average at its pace of buying and paying;
- recommended = min(capacity, need when there are sales, cap), rounded down to
  `limit_rounding`; class E: 0 (prepayment).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import Connection, select, update

from encours.analytics.kpis import compute_kpis
from encours.i18n import N_, TranslatableError, _
from encours.money import from_minor, to_minor
from encours.risk.classes import DEFAULT_POLICY, RiskPolicy, latest_assessment
from encours.risk.statements import amounts_of, latest_statements
from encours.store.db import inserted_id
from encours.store.risk_schema import LimitRequest
from encours.store.schema import AuditEntry, Customer

REQUESTS = LimitRequest.__table__
CUSTOMERS = Customer.__table__


class LimitError(TranslatableError):
    """A limit request that cannot be made or decided (the message says why, in the
    language of the page or of the CLI: `translated(gettext)`)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def audit(
    conn: Connection, actor: str, action: str, entity: str, key: str,
    before: dict | None, after: dict | None,
) -> None:  # fmt: skip
    conn.execute(AuditEntry.__table__.insert().values(
        at=_now(), actor=actor, action=action, entity=entity, entity_key=key,
        before=before, after=after))  # fmt: skip


def find_customer(conn: Connection, code: str) -> dict:
    """The customer row of a code (LookupError when unknown)."""
    row = conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.code == code)).mappings().first()
    if row is None:
        raise LookupError(_("Unknown customer {code}").format(code=code))
    return dict(row)


@dataclass(frozen=True)
class LimitRecommendation:
    customer_code: str
    currency: str
    risk_class: str
    recommended: Decimal
    current: Decimal | None
    capacity: Decimal
    need: Decimal | None
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "customer": self.customer_code, "currency": self.currency,
            "risk_class": self.risk_class, "recommended": str(self.recommended),
            "current": None if self.current is None else str(self.current),
            "capacity": str(self.capacity),
            "need": None if self.need is None else str(self.need), "reasons": self.reasons,
        }  # fmt: skip


def _round_down(amount: Decimal, step: Decimal) -> Decimal:
    if amount <= 0:
        return Decimal(0)
    return (amount / step).to_integral_value(rounding=ROUND_FLOOR) * step


def recommend_limit(
    conn: Connection,
    customer_code: str,
    as_of: dt.date,
    *,
    risk_class: str | None = None,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> LimitRecommendation:
    """The policy's limit for one customer (see the module docstring)."""
    customer = find_customer(conn, customer_code)
    currency = customer["currency"]
    reasons: list[str] = []
    if risk_class is None:
        latest = latest_assessment(conn, customer["id"], as_of)
        risk_class = latest["risk_class"] if latest else "C"
        if latest is None:
            reasons.append(_("Not assessed yet: class C assumed"))
    reasons.append(_("Risk class {risk_class}").format(risk_class=risk_class))

    statements = latest_statements(conn, as_of, customer["id"])
    capacity: Decimal | None = None
    if statements.height:
        row = statements.row(0, named=True)
        amounts = amounts_of(row, row["currency"])
        candidates = []
        if amounts["equity"] is not None:
            share = policy.equity_share[risk_class]
            candidates.append(max(amounts["equity"], Decimal(0)) * share)
            reasons.append(_("{share} % of the equity {equity} ({year})").format(
                share=share * 100, equity=amounts["equity"], year=row["fiscal_year"]))  # fmt: skip
        if amounts["revenue"] is not None:
            share = policy.revenue_share[risk_class]
            candidates.append(max(amounts["revenue"], Decimal(0)) * share)
            text = _("{share} % of the revenue {revenue} ({year})")
            reasons.append(
                text.format(share=share * 100, revenue=amounts["revenue"], year=row["fiscal_year"])
            )
        if candidates:
            capacity = min(candidates)
    if capacity is None:
        capacity = policy.initial_limit[risk_class]
        reasons.append(_("No usable statements: initial limit of class {risk_class}, {amount}")
                       .format(risk_class=risk_class, amount=capacity))  # fmt: skip

    need: Decimal | None = None
    kpis = compute_kpis(conn, as_of, customer_id=customer["id"]).get(currency)
    if kpis and kpis["sales_12m_minor"] > 0:
        days = max(Decimal(str(kpis["wadp"] or 0)), Decimal(policy.min_days_to_pay))
        exposure = from_minor(kpis["sales_12m_minor"], currency) / 365 * days
        need = exposure * policy.exposure_factor[risk_class]
        reasons.append(
            _("Predicted exposure {exposure} ({days} days of sales), x {factor}").format(
                exposure=exposure.quantize(Decimal("0.01")), days=days,
                factor=policy.exposure_factor[risk_class])
        )  # fmt: skip
    amount = capacity if need is None else min(capacity, need)
    if amount > policy.limit_cap:
        amount = policy.limit_cap
        reasons.append(_("Capped at {cap}").format(cap=policy.limit_cap))
    amount = _round_down(amount, policy.limit_rounding)
    if risk_class == "E":
        amount = Decimal(0)
        reasons.append(_("Class E: no credit, prepayment"))
    current = customer["credit_limit_minor"]
    return LimitRecommendation(
        customer_code=customer_code, currency=currency, risk_class=risk_class,
        recommended=from_minor(to_minor(amount, currency), currency),
        current=None if current is None else from_minor(current, currency),
        capacity=capacity.quantize(Decimal("0.01")),
        need=None if need is None else need.quantize(Decimal("0.01")), reasons=reasons,
    )  # fmt: skip


def _request_row(conn: Connection, request_id: int) -> dict:
    row = conn.execute(select(REQUESTS).where(REQUESTS.c.id == request_id)).mappings().first()
    if row is None:
        raise LimitError(N_("No limit request #{id}"), id=request_id)
    return dict(row)


def _request_audit(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
            for k, v in row.items()}  # fmt: skip


def request_limit(
    conn: Connection,
    customer_code: str,
    amount: Decimal | None,
    *,
    actor: str,
    as_of: dt.date,
    reason: str | None = None,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> int:
    """Ask for a new credit limit (pending until approved or rejected); `amount` None asks
    to remove the limit. Returns the request's id."""
    customer = find_customer(conn, customer_code)
    currency = customer["currency"]
    if amount is not None and amount < 0:
        raise LimitError(N_("A credit limit cannot be negative"))
    pending = conn.execute(select(REQUESTS.c.id).where(
        (REQUESTS.c.customer_id == customer["id"]) & (REQUESTS.c.status == "pending")
    )).scalar()  # fmt: skip
    if pending is not None:
        raise LimitError(N_("Request #{id} is already pending for this customer"), id=pending)
    recommended = recommend_limit(conn, customer_code, as_of, policy=policy).recommended
    values = {
        "customer_id": customer["id"], "currency": currency,
        "current_minor": customer["credit_limit_minor"],
        "requested_minor": None if amount is None else to_minor(amount, currency),
        "recommended_minor": to_minor(recommended, currency), "reason": reason,
        "status": "pending", "requested_by": actor, "requested_at": _now(),
    }  # fmt: skip
    request_id = inserted_id(conn.execute(REQUESTS.insert().values(**values)))
    audit(conn, actor, "limit_request", "limit_request", str(request_id), None,
          _request_audit({"customer": customer_code, **values}))  # fmt: skip
    return int(request_id)


def _decide(conn: Connection, request_id: int, actor: str, status: str, note: str | None,
            policy: RiskPolicy) -> dict:  # fmt: skip
    row = _request_row(conn, request_id)
    if row["status"] != "pending":
        raise LimitError(N_("Request #{id} is already {status}"), id=request_id,
                         status=row["status"])  # fmt: skip
    if policy.four_eyes and actor == row["requested_by"]:
        raise LimitError(N_("The author of a request cannot decide it (four-eyes rule)"))
    decided = {"status": status, "decided_by": actor, "decided_at": _now(),
               "decision_note": note}  # fmt: skip
    conn.execute(update(REQUESTS).where(REQUESTS.c.id == request_id).values(**decided))
    audit(conn, actor, f"limit_{status}", "limit_request", str(request_id),
          {"status": "pending"}, _request_audit(decided))  # fmt: skip
    return row


def approve_limit(
    conn: Connection, request_id: int, *, actor: str, note: str | None = None,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> int | None:  # fmt: skip
    """Approve a pending request: the customer's credit limit becomes the requested one
    (customer change audited). Returns the new limit in minor units (None: no limit)."""
    row = _decide(conn, request_id, actor, "approved", note, policy)
    code = conn.execute(select(CUSTOMERS.c.code).where(
        CUSTOMERS.c.id == row["customer_id"])).scalar_one()  # fmt: skip
    before = conn.execute(select(CUSTOMERS.c.credit_limit_minor).where(
        CUSTOMERS.c.id == row["customer_id"])).scalar_one()  # fmt: skip
    conn.execute(update(CUSTOMERS).where(CUSTOMERS.c.id == row["customer_id"]).values(
        credit_limit_minor=row["requested_minor"], updated_at=_now()))  # fmt: skip
    audit(conn, actor, "update", "customer", code, {"credit_limit_minor": before},
          {"credit_limit_minor": row["requested_minor"], "limit_request": request_id})  # fmt: skip
    return None if row["requested_minor"] is None else int(row["requested_minor"])


def reject_limit(
    conn: Connection, request_id: int, *, actor: str, note: str | None = None,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> None:  # fmt: skip
    _decide(conn, request_id, actor, "rejected", note, policy)


def list_requests(conn: Connection, status: str | None = "pending") -> list[dict]:
    query = select(REQUESTS, CUSTOMERS.c.code).join(
        CUSTOMERS, CUSTOMERS.c.id == REQUESTS.c.customer_id).order_by(REQUESTS.c.id)  # fmt: skip
    if status is not None:
        query = query.where(REQUESTS.c.status == status)
    return [dict(r) for r in conn.execute(query).mappings()]


def set_limit_directly(
    conn: Connection, customer_id: int, code: str, amount_minor: int, actor: str, why: str
) -> None:
    """Initial limit set by onboarding (audited; later changes go through requests)."""
    before = conn.execute(select(CUSTOMERS.c.credit_limit_minor).where(
        CUSTOMERS.c.id == customer_id)).scalar_one()  # fmt: skip
    conn.execute(update(CUSTOMERS).where(CUSTOMERS.c.id == customer_id).values(
        credit_limit_minor=amount_minor, updated_at=_now()))  # fmt: skip
    audit(conn, actor, "update", "customer", code, {"credit_limit_minor": before},
          {"credit_limit_minor": amount_minor, "why": why})  # fmt: skip
