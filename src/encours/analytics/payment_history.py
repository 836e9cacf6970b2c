"""A customer's payment behaviour month by month: the invoices it settled each month, the
share settled late and their average days late (the customer page's "payment behaviour
over time").

An invoice is settled on the day its allocations (payments and credit notes) first cover
its amount; days late = settlement day - due date when positive, else 0. Only what is
dated on or before `as_of` counts, so a past day can be replayed. One customer's invoices
and allocations are read (indexed by customer) and the running sums are computed in polars.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Connection

from encours.analytics.kpis import month_back
from encours.store.frames import query_frame

_INVOICES = (
    "SELECT d.id AS invoice_id, d.due_date AS due_date, d.amount_minor AS amount_minor "
    "FROM documents d WHERE d.customer_id = :cid AND d.kind = 'invoice' "
    "AND d.issue_date <= :as_of AND d.amount_minor > 0"
)
_ALLOCATIONS = (
    "SELECT a.invoice_id AS invoice_id, a.date AS day, a.amount_minor AS amount_minor "
    "FROM allocations a JOIN documents d ON d.id = a.invoice_id "
    "WHERE d.customer_id = :cid AND a.date <= :as_of"
)
SCHEMA = {
    "month": pl.Date,
    "settled": pl.Int64,
    "late_share": pl.Float64,
    "avg_days_late": pl.Float64,
}


def _months(as_of: dt.date, months: int) -> list[dt.date]:
    first = as_of.replace(day=1)
    out = [first]
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        out.append(first)
    return out[::-1]


def monthly_payment_behaviour(
    conn: Connection, customer_id: int, as_of: dt.date, months: int = 12
) -> pl.DataFrame:
    """One row per month of the last `months` (oldest first, the month of `as_of` last):
    invoices settled that month, share of them settled late, their average days late
    (nulls for a month without settlement)."""
    params = {"cid": customer_id, "as_of": as_of}
    invoices = query_frame(
        conn,
        _INVOICES,
        {"invoice_id": pl.Int64, "due_date": pl.Date, "amount_minor": pl.Int64},
        params,
    )
    allocations = query_frame(
        conn,
        _ALLOCATIONS,
        {"invoice_id": pl.Int64, "day": pl.Date, "amount_minor": pl.Int64},
        params,
    )
    start = month_back(as_of, months)
    settled = (
        allocations.sort("invoice_id", "day")
        .with_columns(covered=pl.col("amount_minor").cum_sum().over("invoice_id"))
        .join(invoices.rename({"amount_minor": "invoice_minor"}), on="invoice_id")
        .filter(pl.col("covered") >= pl.col("invoice_minor"))
        .group_by("invoice_id")
        .agg(pl.col("day").min().alias("settled_on"), pl.col("due_date").first())
        .filter(pl.col("settled_on") > start)
        .with_columns(
            days_late=(pl.col("settled_on") - pl.col("due_date")).dt.total_days().clip(0, None),
            month=pl.col("settled_on").dt.truncate("1mo"),
        )
    )
    per_month = settled.group_by("month").agg(
        settled=pl.len().cast(pl.Int64),
        late_share=(pl.col("days_late") > 0).mean(),
        avg_days_late=pl.col("days_late").mean(),
    )
    frame = pl.DataFrame({"month": _months(as_of, months)}, schema={"month": pl.Date})
    return (
        frame.join(per_month, on="month", how="left")
        .with_columns(pl.col("settled").fill_null(0))
        .select(list(SCHEMA))
        .cast(pl.Schema(SCHEMA))
    )


__all__ = ["monthly_payment_behaviour"]
