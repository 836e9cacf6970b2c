"""Customer and portfolio positions as of a day: balance, aging, unapplied cash, exposure.

A report is a function of (ledger positions, filters, as-of date): the CLI, the web pages
and the API all call these functions.

- balance = open invoices - unapplied cash - unapplied credit notes
- exposure = max(balance, 0); headroom = credit limit - exposure; over limit when < 0
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Connection

from encours.domain.aging import DEFAULT_SPEC, Bucket, parse_buckets
from encours.store import positions

MONEY_COLUMNS_BASE = [
    "balance_minor",
    "invoices_open_minor",
    "not_due_minor",
    "overdue_minor",
    "unapplied_cash_minor",
    "unapplied_credit_minor",
]


def customer_positions(
    conn: Connection,
    as_of: dt.date,
    buckets: tuple[Bucket, ...] | None = None,
    include_zero: bool = False,
) -> pl.DataFrame:
    """One row per customer and currency with its position as of `as_of`."""
    buckets = buckets or parse_buckets(DEFAULT_SPEC)
    aging = positions.aging_by_customer(conn, as_of, buckets)
    unapplied = positions.unapplied_by_customer(conn, as_of)
    frame = aging.join(unapplied, on=["customer_id", "currency"], how="full", coalesce=True)
    minor_cols = [c for c in frame.columns if c.endswith("_minor")] + ["open_invoices"]
    frame = frame.with_columns([pl.col(c).fill_null(0) for c in minor_cols])
    frame = frame.with_columns(
        balance_minor=pl.col("invoices_open_minor")
        - pl.col("unapplied_cash_minor")
        - pl.col("unapplied_credit_minor"),
        days_oldest_overdue=(pl.lit(as_of) - pl.col("oldest_due_date")).dt.total_days(),
    )
    customers = positions.customers_frame(conn)
    frame = frame.join(customers, on="customer_id", how="right" if include_zero else "left")
    if include_zero:
        frame = frame.with_columns(
            pl.col("currency").fill_null(pl.col("customer_currency")),
            *[pl.col(c).fill_null(0) for c in minor_cols + ["balance_minor"]],
        )
    exposure = pl.col("balance_minor").clip(lower_bound=0)
    frame = frame.with_columns(
        exposure_minor=exposure,
        headroom_minor=pl.col("credit_limit_minor") - exposure,
        limit_used=pl.when(pl.col("credit_limit_minor") > 0)
        .then(exposure / pl.col("credit_limit_minor"))
        .otherwise(None),
    )
    return frame.sort(["balance_minor", "code"], descending=[True, False])


def portfolio_totals(frame: pl.DataFrame, buckets: tuple[Bucket, ...]) -> pl.DataFrame:
    """Portfolio totals per currency from customer positions."""
    sums = MONEY_COLUMNS_BASE + [f"{b.key}_minor" for b in buckets] + ["exposure_minor"]
    over_limit = (pl.col("headroom_minor") < 0).fill_null(False)
    return (
        frame.group_by("currency")
        .agg(
            *[pl.col(c).sum() for c in sums],
            pl.col("open_invoices").sum(),
            customers_with_balance=(pl.col("balance_minor") != 0).sum(),
            customers_over_limit=over_limit.sum(),
            over_limit_minor=pl.when(over_limit).then(-pl.col("headroom_minor")).otherwise(0).sum(),
        )
        .sort("currency")
    )
