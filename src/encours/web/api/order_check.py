"""POST /api/v1/order-check: approve, warn or hold a new order, with its reasons.

Calls `encours.risk.order_check.check_order`, which reads the ordering customer only
(two indexed statements, no portfolio-wide work): the answer takes milliseconds whatever
the size of the ledger. The route and its authentication are `async`: the ~1-2 ms of work
runs on the event loop, with no hand-off to the thread pool (each hand-off waits for the
GIL behind the page renders of the same process under load). Each check is logged in
`order_checks` (one insert in the same transaction, actor = the user or token) for the
monitor's "large order for a risky customer" rule; `?record=false` makes a what-if check,
not logged.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from encours.store.db import unit_of_work
from encours.web.accounts import Principal
from encours.web.deps import DAY_PATTERN, MAX_DAY, MIN_DAY, DbUrl, csrf_protect, require
from encours.web.problems import PROBLEM_RESPONSES
from encours.web.queries import NO_OWNER
from encours.web.roles import OWN_ACCOUNTS_ONLY

router = APIRouter(
    prefix="/api/v1", tags=["api"], responses=PROBLEM_RESPONSES,
    dependencies=[Depends(csrf_protect)],
)  # fmt: skip


class OrderCheckIn(BaseModel):
    customer: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$",
                          description="Customer code")  # fmt: skip
    amount: Decimal = Field(ge=0, le=Decimal("1e13"), max_digits=17, decimal_places=6,
                            description="Order amount in the customer's currency")  # fmt: skip
    as_of: dt.date | None = Field(None, description="Day of the order, default today",
                                  json_schema_extra={"pattern": DAY_PATTERN})  # fmt: skip


class OrderCheckOut(BaseModel):
    customer: str
    decision: str = Field(description="approve, warn or hold")
    reasons: list[str]
    codes: list[str]
    currency: str
    exposure: str
    order: str
    limit: str | None = None
    headroom_after: str | None = None
    risk_class: str | None = None
    as_of: dt.date
    order_check_id: int | None = Field(None, description="The logged check (null: not logged)")


@router.post("/order-check", response_model=OrderCheckOut, summary="Credit check of an order")
async def order_check(
    body: OrderCheckIn,
    principal: Annotated[Principal, Depends(require("orders.check"))],
    url: DbUrl,
    record: Annotated[bool, Query(description="Log the check for the monitoring "
                                              "(false: a what-if check)")] = True,
) -> OrderCheckOut:  # fmt: skip
    from encours.risk.monitor import check_and_record_order

    day = body.as_of or dt.date.today()
    if not MIN_DAY <= day <= MAX_DAY:
        raise HTTPException(status_code=422, detail="as_of must be between 1900 and 2200")
    # sales: their own accounts only (another customer is "unknown", as on the pages)
    owner = (principal.owner_name or NO_OWNER) if principal.role in OWN_ACCOUNTS_ONLY else None
    try:
        with unit_of_work(url) as conn:
            result, check_id = check_and_record_order(
                conn, body.customer, body.amount, day, principal.actor, record=record,
                owner_name=owner,
            )  # fmt: skip
    except LookupError:
        raise HTTPException(status_code=404, detail=f"no customer {body.customer!r}") from None
    return OrderCheckOut(customer=body.customer, as_of=day, order_check_id=check_id,
                         **result.as_dict())  # fmt: skip


__all__ = ["router"]
