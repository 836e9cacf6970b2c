"""State changes started from the web (besides users and tokens): each in one transaction,
audited with before and after."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update

from encours.money import from_minor, to_minor
from encours.store.db import unit_of_work
from encours.store.schema import Customer
from encours.web.accounts import AccountError, Principal, audit
from encours.web.queries import find_customer

CUSTOMERS = Customer.__table__


def set_credit_limit(db_url: str | None, code: str, limit: str, principal: Principal) -> None:
    """Set (or clear, with an empty value) a customer's credit limit, in its currency."""
    with unit_of_work(db_url) as conn:
        customer = find_customer(conn, code, principal)
        if customer is None:
            raise LookupError(code)
        currency = customer["currency"]
        text = limit.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        if text == "":
            new_minor = None
        else:
            try:
                value = Decimal(text.replace(",", "."))
                if value < 0 or not value.is_finite():
                    raise InvalidOperation
                new_minor = to_minor(value, currency)
            except (InvalidOperation, ValueError) as exc:
                raise AccountError("the credit limit must be a positive amount") from exc
        old_minor = conn.execute(
            select(CUSTOMERS.c.credit_limit_minor).where(CUSTOMERS.c.id == customer["id"])
        ).scalar_one()
        if old_minor == new_minor:
            return
        conn.execute(
            update(CUSTOMERS).where(CUSTOMERS.c.id == customer["id"])
            .values(credit_limit_minor=new_minor)
        )  # fmt: skip

        def shown(minor: int | None) -> str | None:
            return None if minor is None else str(from_minor(minor, currency))

        audit(conn, principal.actor, "update", "customer", code,
              {"credit_limit": shown(old_minor)}, {"credit_limit": shown(new_minor)})  # fmt: skip
