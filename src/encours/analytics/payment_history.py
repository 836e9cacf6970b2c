"""A customer's payment behaviour month by month: the invoices it settled each month, the
share settled late and their average days late (the customer page's "payment behaviour
over time").

An invoice is settled on the day its allocations (payments and credit notes) first cover
its amount; days late = settlement day - due date when positive, else 0. Only what is
dated on or before `as_of` counts, so a past day can be replayed. The running sums are a
window in SQL over the customer's allocations (indexed by customer, then by invoice); only
the settlements of the period come back, grouped by month in polars.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Connection

from encours.analytics.kpis import month_back
from encours.store.frames import query_frame

# Each invoice's settlement day: the first day its allocations' running sum covers its
# amount (a window over the customer's allocations, through the (invoice_id, date) index);
# only the invoices settled after `start` come back (a few hundred rows at most a year).
_SETTLEMENTS = """
SELECT MIN(r.day) AS settled_on, MIN(r.due_date) AS due_date
FROM (
    SELECT a.invoice_id AS invoice_id, a.date AS day, d.due_date AS due_date,
           d.amount_minor AS amount_minor,
           SUM(a.amount_minor) OVER (PARTITION BY a.invoice_id ORDER BY a.date) AS covered
    FROM documents d JOIN allocations a ON a.invoice_id = d.id
    WHERE d.customer_id = :cid AND d.kind = 'invoice' AND d.issue_date <= :as_of
      AND d.amount_minor > 0 AND a.date <= :as_of
) r
WHERE r.covered >= r.amount_minor
GROUP BY r.invoice_id
HAVING MIN(r.day) > :start
"""
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
    start = month_back(as_of, months)
    settled = query_frame(
        conn,
        _SETTLEMENTS,
        {"settled_on": pl.Date, "due_date": pl.Date},
        {"cid": customer_id, "as_of": as_of, "start": start},
        few_rows=True,
    ).with_columns(
        days_late=(pl.col("settled_on") - pl.col("due_date")).dt.total_days().clip(0, None),
        month=pl.col("settled_on").dt.truncate("1mo"),
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
