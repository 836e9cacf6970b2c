"""Month-end snapshots of positions and KPIs, and the trends read back from them.

`take_snapshot(conn, as_of)` stores, for the day:

- one `customer_snapshots` row per customer (and currency) with a position as of the day:
  balance_minor and overdue_minor as in `analytics.portfolio.customer_positions`, and
  `buckets` = {"not_due": minor, "<bucket key>": minor, ...} (keys of the aging buckets,
  e.g. "d1_30", "d121_plus"); written with `bulk.insert_frame` (COPY on PostgreSQL);
- one `portfolio_snapshots` row per currency whose `kpis` JSON holds the portfolio KPIs of
  `analytics.kpis.compute_kpis` and the portfolio totals (balance_minor, overdue_minor,
  exposure_minor, customers_with_balance, ...): strings and numbers only, an undefined
  KPI (None) is left out.

Re-running for the same day replaces that day's rows (delete then insert, in one
transaction), it never duplicates them. Snapshots are replayed as of the day, so taking
them after importing years of history rebuilds the past months (`take_monthly_snapshots`).

Note: customer_snapshots is unique on (as_of, customer_id), not currency. While it is,
a customer with positions in several currencies keeps only one row: the one in the
customer's own currency, else the largest absolute balance (the count of dropped rows is
returned). When the constraint includes currency, every row is kept.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging

import polars as pl
from sqlalchemy import Connection, Date, UniqueConstraint, bindparam, delete, select, text

from encours.analytics import kpis as kpis_mod
from encours.analytics.portfolio import customer_positions, portfolio_totals
from encours.domain.aging import DEFAULT_SPEC, Bucket, parse_buckets
from encours.store import bulk
from encours.store.schema import CustomerSnapshot, PortfolioSnapshot

log = logging.getLogger(__name__)

CUSTOMER_TABLE = CustomerSnapshot.__table__
PORTFOLIO_TABLE = PortfolioSnapshot.__table__


def _unique_per_currency() -> bool:
    """True when customer_snapshots may hold several currencies per customer and day."""
    for constraint in CUSTOMER_TABLE.constraints:
        if isinstance(constraint, UniqueConstraint):
            cols = {c.name for c in constraint.columns}
            if {"as_of", "customer_id"} <= cols:
                return "currency" in cols
    return True


def _customer_rows(
    conn: Connection, as_of: dt.date, buckets: tuple[Bucket, ...]
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(customer snapshot rows, full positions, rows dropped for the unique constraint)."""
    positions = customer_positions(conn, as_of, buckets)
    keys = ["not_due"] + [b.key for b in buckets]
    frame = positions.select(
        "customer_id",
        "currency",
        "customer_currency",
        "balance_minor",
        "overdue_minor",
        buckets=pl.struct(
            [pl.col(f"{k}_minor").fill_null(0).cast(pl.Int64).alias(k) for k in keys]
        ).struct.json_encode(),
    )
    dropped = 0
    if not _unique_per_currency():
        before = frame.height
        frame = frame.sort(
            [
                pl.col("currency") == pl.col("customer_currency"),
                pl.col("balance_minor").abs(),
                "currency",
            ],
            descending=[True, True, False],
        ).unique(subset=["customer_id"], keep="first", maintain_order=True)
        dropped = before - frame.height
        if dropped:
            log.warning(
                "snapshot %s: %d customer rows in a second currency not stored "
                "(customer_snapshots is unique on as_of, customer_id)",
                as_of,
                dropped,
            )
    frame = frame.select(
        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        "customer_id",
        "currency",
        pl.col("balance_minor").cast(pl.Int64),
        pl.col("overdue_minor").cast(pl.Int64),
        "buckets",
    ).sort("customer_id")
    return frame, positions, dropped


def _json_safe(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _portfolio_rows(
    conn: Connection,
    as_of: dt.date,
    positions: pl.DataFrame,
    buckets: tuple[Bucket, ...],
    cei_days: int,
) -> list[dict]:
    kpis = kpis_mod.compute_kpis(conn, as_of, cei_days=cei_days)
    totals = {
        row.pop("currency"): row
        for row in portfolio_totals(positions, buckets).iter_rows(named=True)
    }
    rows = []
    for currency in sorted(set(kpis) | set(totals)):
        merged: dict[str, object] = {"as_of": as_of.isoformat(), "currency": currency}
        merged.update(totals.get(currency, {}))
        merged.update(kpis.get(currency, {}))
        clean = {k: _json_safe(v) for k, v in merged.items() if v is not None}
        rows.append({"as_of": as_of, "currency": currency, "kpis": clean})
    return rows


def take_snapshot(
    conn: Connection,
    as_of: dt.date,
    *,
    buckets: tuple[Bucket, ...] | None = None,
    cei_days: int = kpis_mod.DEFAULT_CEI_DAYS,
) -> dict[str, int]:
    """Store the customer positions and portfolio KPIs of `as_of` (replacing that day's).

    Runs in the caller's transaction when one is open (the caller commits), else in its
    own. Returns {"customers": rows written, "currencies": portfolio rows written,
    "dropped": customer rows left out by the (as_of, customer_id) unique constraint}.
    """
    buckets = buckets or parse_buckets(DEFAULT_SPEC)
    if conn.in_transaction():
        return _take(conn, as_of, buckets, cei_days)
    with conn.begin():
        return _take(conn, as_of, buckets, cei_days)


def _take(
    conn: Connection, as_of: dt.date, buckets: tuple[Bucket, ...], cei_days: int
) -> dict[str, int]:
    customers, positions, dropped = _customer_rows(conn, as_of, buckets)
    portfolio = _portfolio_rows(conn, as_of, positions, buckets, cei_days)
    conn.execute(delete(CUSTOMER_TABLE).where(CUSTOMER_TABLE.c.as_of == as_of))
    conn.execute(delete(PORTFOLIO_TABLE).where(PORTFOLIO_TABLE.c.as_of == as_of))
    bulk.insert_frame(conn, CUSTOMER_TABLE, customers)
    if portfolio:
        conn.execute(PORTFOLIO_TABLE.insert(), portfolio)
    return {"customers": customers.height, "currencies": len(portfolio), "dropped": dropped}


def month_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every last day of a month in [start, end], in order."""
    days = []
    year, month = start.year, start.month
    while True:
        last = dt.date(year, month, calendar.monthrange(year, month)[1])
        if last > end:
            break
        if last >= start:
            days.append(last)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return days


def take_monthly_snapshots(
    conn: Connection,
    start: dt.date,
    end: dt.date,
    *,
    buckets: tuple[Bucket, ...] | None = None,
    cei_days: int = kpis_mod.DEFAULT_CEI_DAYS,
) -> list[dt.date]:
    """A snapshot for every month-end in [start, end] (after importing history).

    All in one transaction (the caller's when open). Returns the month-ends snapshotted.
    """
    days = month_ends(start, end)
    buckets = buckets or parse_buckets(DEFAULT_SPEC)
    if conn.in_transaction():
        for day in days:
            _take(conn, day, buckets, cei_days)
    else:
        with conn.begin():
            for day in days:
                _take(conn, day, buckets, cei_days)
    return days


def trend(
    conn: Connection,
    metric: str,
    months: int = 12,
    as_of: dt.date | None = None,
    *,
    currency: str = "EUR",
) -> list[tuple[dt.date, float | int | str | None]]:
    """[(snapshot day, value of `metric`)] from portfolio_snapshots, oldest first.

    The snapshots of `currency` taken in (as_of - `months` months, as_of]; `as_of` defaults
    to the latest snapshot. Only days with a snapshot are listed; the value is None when
    the snapshot has no such metric (e.g. an undefined DSO).
    """
    table = PORTFOLIO_TABLE
    if as_of is None:
        as_of = conn.execute(
            select(table.c.as_of)
            .where(table.c.currency == currency)
            .order_by(table.c.as_of.desc())
            .limit(1)
        ).scalar()
        if as_of is None:
            return []
        if isinstance(as_of, str):
            as_of = dt.date.fromisoformat(as_of)
    start = kpis_mod.month_back(as_of, months)
    stmt = (
        text(
            "SELECT as_of, kpis FROM portfolio_snapshots "
            "WHERE currency = :currency AND as_of > :start AND as_of <= :as_of ORDER BY as_of"
        )
        .bindparams(bindparam("start", type_=Date), bindparam("as_of", type_=Date))
        .columns(table.c.as_of, table.c.kpis)
    )
    points = []
    for day, kpis in conn.execute(stmt, {"currency": currency, "start": start, "as_of": as_of}):
        if isinstance(kpis, str):
            kpis = json.loads(kpis)
        points.append((day, (kpis or {}).get(metric)))
    return points
