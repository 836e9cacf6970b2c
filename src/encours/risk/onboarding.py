"""Onboarding of a new customer: identifiers checked, profile and checklist recorded, an
initial risk class and credit limit from the policy; high-risk customers get a deposit
(class D) or prepayment (class E).

Initial class: B, one class worse for each of: a company created less than
`young_company_years` ago (or of unknown age), a high-risk sector, a country outside the
low-risk list, a required checklist item missing (contract signed with the payment terms
and the penalty clause); at most E. The limit is the policy's recommendation for that
class (`risk.limits.recommend_limit`: without statements nor sales, the class's initial
limit). Every change to the customer is audited.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, select, update

from encours.domain.identifiers import (
    check_consistency,
    normalize_siren,
    normalize_siret,
    normalize_vat,
)
from encours.i18n import _
from encours.money import MoneyError, check_currency, to_minor
from encours.risk.classes import CLASSES, DEFAULT_POLICY, RiskPolicy, reason, store_assessment
from encours.risk.limits import audit, recommend_limit, set_limit_directly
from encours.store.db import inserted_id
from encours.store.risk_schema import CustomerProfile
from encours.store.schema import Customer

CHECKLIST_ITEMS = ("contract", "payment_terms", "penalty_clause", "retention_of_title",
                   "deposit_decided")  # fmt: skip
ADDRESS_FIELDS = ("address_line1", "address_line2", "postal_code", "city")
CUSTOMERS = Customer.__table__
PROFILES = CustomerProfile.__table__


class OnboardingError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class OnboardingResult:
    customer_id: int
    code: str
    risk_class: str
    credit_limit: Decimal
    currency: str
    review_date: dt.date
    deposit_required: bool
    prepayment_required: bool
    reasons: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        from encours.risk.classes import reasons_text

        return {
            "customer": self.code, "risk_class": self.risk_class,
            "credit_limit": str(self.credit_limit), "currency": self.currency,
            "review_date": self.review_date.isoformat(),
            "deposit_required": self.deposit_required,
            "prepayment_required": self.prepayment_required,
            "reasons": reasons_text(self.reasons),
        }  # fmt: skip


def initial_class(
    *,
    created: dt.date | None,
    sector: str | None,
    country: str | None,
    checklist: set[str],
    as_of: dt.date,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> tuple[str, list[dict]]:
    """The onboarding class and its reasons (module docstring)."""
    grade, reasons = 1, []
    young_from = dt.date(as_of.year - policy.young_company_years, as_of.month,
                         min(as_of.day, 28))  # fmt: skip
    if created is None or created > young_from:
        grade += 1
        reasons.append(reason("young_company", years=policy.young_company_years))
    if sector and any(sector.strip().lower().startswith(s.lower())
                      for s in policy.high_risk_sectors):  # fmt: skip
        grade += 1
        reasons.append(reason("high_risk_sector", sector=sector))
    if country and country.upper() not in policy.low_risk_countries:
        grade += 1
        reasons.append(reason("foreign_country", country=country.upper()))
    missing = [item for item in policy.required_checklist if item not in checklist]
    if missing:
        grade += 1
        reasons.append(reason("checklist_missing", items=", ".join(missing)))
    risk_class = CLASSES[min(grade, 4)]
    if risk_class in ("D", "E"):
        reasons.append(reason("prepayment"))
    return risk_class, reasons


def onboard_customer(
    conn: Connection,
    code: str,
    name: str,
    *,
    siren: str | None = None,
    siret: str | None = None,
    vat_number: str | None = None,
    legal_form: str | None = None,
    created: dt.date | None = None,
    sector: str | None = None,
    country: str | None = "FR",
    address_line1: str | None = None,
    address_line2: str | None = None,
    postal_code: str | None = None,
    city: str | None = None,
    checklist: list[str] | tuple[str, ...] = (),
    currency: str = "EUR",
    payment_terms: str = "30 days net",
    as_of: dt.date | None = None,
    actor: str = "cli",
    policy: RiskPolicy = DEFAULT_POLICY,
) -> OnboardingResult:
    """Create (or complete) the customer, its profile, first assessment and limit, in the
    caller's transaction. OnboardingError lists every problem of the input."""
    as_of = as_of or dt.date.today()
    problems: list[str] = []
    ids: dict[str, str | None] = {"siren": None, "siret": None, "vat_number": None}
    for key, value, normalize in (("siren", siren, normalize_siren),
                                  ("siret", siret, normalize_siret),
                                  ("vat_number", vat_number, normalize_vat)):  # fmt: skip
        if value:
            try:
                ids[key] = normalize(value)
            except ValueError as exc:
                problems.append(str(exc))
    if not problems:
        problems.extend(check_consistency(ids["siren"], ids["siret"], ids["vat_number"]))
    if ids["siren"] is None and ids["siret"] is not None:
        ids["siren"] = ids["siret"][:9]
    unknown = [item for item in checklist if item not in CHECKLIST_ITEMS]
    if unknown:
        problems.append(_("Unknown checklist item(s) {items}: expected {expected}").format(
            items=", ".join(unknown), expected=", ".join(CHECKLIST_ITEMS)))  # fmt: skip
    if country and (len(country) != 2 or not country.isalpha()):
        problems.append(_("Country {country}: a 2-letter ISO code expected").format(
            country=country))  # fmt: skip
    address = {
        key: (value.strip() or None) if value else None
        for key, value in zip(ADDRESS_FIELDS, (address_line1, address_line2, postal_code, city),
                              strict=True)
    }  # fmt: skip
    code_ = address["postal_code"]
    if code_ and (country or "FR").upper() == "FR" and not re.fullmatch(r"\d{5}", code_):
        problems.append(_("Postal code {code}: 5 digits expected in France").format(code=code_))
    if created is not None and created > as_of:
        problems.append(_("Date of creation {day} is in the future").format(day=created))
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        problems.append(str(exc))
    if not name.strip():
        problems.append(_("A name is required"))
    existing = conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.code == code)).mappings().first()
    if (
        existing is not None
        and conn.execute(
            select(PROFILES.c.customer_id).where(PROFILES.c.customer_id == existing["id"])
        ).first()
    ):
        problems.append(_("Customer {code} is already onboarded").format(code=code))
    if problems:
        raise OnboardingError(problems)

    items = set(checklist)
    risk_class, reasons = initial_class(created=created, sector=sector, country=country,
                                        checklist=items, as_of=as_of, policy=policy)  # fmt: skip
    deposit = risk_class in ("D", "E")
    prepayment = risk_class == "E"
    values = {
        "name": name.strip(), **ids, **address,
        "country": country.upper() if country else None,
        "currency": currency, "payment_terms": payment_terms,
        "retention_of_title": "retention_of_title" in items, "deposit_required": deposit,
    }  # fmt: skip
    if existing is None:
        customer_id = inserted_id(conn.execute(CUSTOMERS.insert().values(code=code, **values)))
        audit(conn, actor, "create", "customer", code, None, values)
    else:
        customer_id = existing["id"]
        values = {k: v for k, v in values.items() if v is not None}
        before = {k: existing[k] for k in values}
        conn.execute(update(CUSTOMERS).where(CUSTOMERS.c.id == customer_id).values(**values))
        audit(conn, actor, "update", "customer", code, before, values)
    profile = {
        "customer_id": customer_id, "legal_form": legal_form, "created_on": created,
        "sector": sector, "checklist": {item: item in items for item in CHECKLIST_ITEMS},
        "prepayment_required": prepayment, "onboarded_on": as_of, "onboarded_by": actor,
    }  # fmt: skip
    conn.execute(PROFILES.insert().values(**profile))
    audit(conn, actor, "onboard", "customer", code, None,
          {**profile, "created_on": created.isoformat() if created else None,
           "onboarded_on": as_of.isoformat(), "risk_class": risk_class})  # fmt: skip
    review = store_assessment(conn, customer_id, as_of, risk_class, reasons,
                              source="onboarding", policy=policy)  # fmt: skip
    limit = recommend_limit(conn, code, as_of, risk_class=risk_class, policy=policy)
    set_limit_directly(conn, customer_id, code, to_minor(limit.recommended, currency), actor,
                       "onboarding")  # fmt: skip
    return OnboardingResult(customer_id, code, risk_class, limit.recommended, currency, review,
                            deposit, prepayment, reasons)  # fmt: skip
