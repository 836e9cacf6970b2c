"""Set-based SQL behind the receivables KPIs (DSO, CEI, ADD, days to pay, late share).

Same conventions as `encours.store.positions`: plain `text()` SQL with Date-typed bind
parameters, no dialect-specific function, so every query runs unchanged on SQLite and
PostgreSQL. Everything is replayed "as of" a day: only invoices issued, and allocations
effective, on or before that day count. Cancelled invoices never count (the status is the
current one: the ledger does not date cancellations).

Two queries:

- `receivables_frame`: one aggregated row per group (customer & currency, or currency):
  receivables (open invoice amounts) as of the day and at the start of the CEI period,
  the not-due part, the sales of each of the 12 monthly periods counted back from the day
  and of the CEI period. One pass over the invoices joined to their allocation sums.
- `settled_invoices`: one row per invoice settled (open amount brought to zero or below)
  during a window, with its settlement date (the latest allocation date on or before the
  day). Date differences are not portable in SQL, so days are computed in polars.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Connection, Date, bindparam, text

MONTHS_BACK = 12
GROUPINGS = {
    "customer": ("customer_id", "currency"),
    "portfolio": ("currency",),
}


def _date_params(statement: str, names: list[str]):  # noqa: ANN202
    return text(statement).bindparams(*[bindparam(n, type_=Date) for n in names])


def _as_date(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Dates arrive as `date` (PostgreSQL) or ISO text (SQLite, untyped text() columns)."""
    exprs = []
    for name in columns:
        if frame.schema[name] == pl.String:
            exprs.append(pl.col(name).str.to_date("%Y-%m-%d"))
        elif frame.schema[name] != pl.Date:
            exprs.append(pl.col(name).cast(pl.Date))
    return frame.with_columns(exprs) if exprs else frame


def receivables_frame(
    conn: Connection,
    as_of: dt.date,
    boundaries: list[dt.date],
    cei_start: dt.date,
    *,
    grouping: str = "customer",
    customer_id: int | None = None,
) -> pl.DataFrame:
    """Aggregated receivables and sales per group.

    `boundaries` = [as_of, b1, ..., b12]: period k is (boundaries[k+1], boundaries[k]].
    Columns: the group keys, open_minor (open invoices as of `as_of`), not_due_minor
    (open, due on or after `as_of`), begin_open_minor (open invoices as of `cei_start`),
    cei_sales_minor (invoices issued in (cei_start, as_of]), s0..s11 (invoices issued in
    each monthly period). Rows with nothing to say (all zero) are dropped.
    """
    keys = GROUPINGS[grouping]
    n = len(boundaries) - 1
    params: dict[str, object] = {"as_of": as_of, "cei_start": cei_start}
    for k, b in enumerate(boundaries[1:], start=1):
        params[f"b{k}"] = b
    sales = []
    for k in range(n):
        cond = f"d.issue_date > :b{k + 1}" + (f" AND d.issue_date <= :b{k}" if k else "")
        # period 0 ends on the as-of day (WHERE issue_date <= :as_of)
        sales.append(f"SUM(CASE WHEN {cond} THEN d.amount_minor ELSE 0 END) AS s{k}")
    where_customer = ""
    if customer_id is not None:
        params["customer_id"] = customer_id
        where_customer = "AND d.customer_id = :customer_id"
    group = ", ".join(f"d.{k}" for k in keys)
    sql = f"""
        SELECT {group},
            SUM(d.amount_minor - COALESCE(a.applied, 0)) AS open_minor,
            SUM(CASE WHEN d.due_date >= :as_of
                     THEN d.amount_minor - COALESCE(a.applied, 0) ELSE 0 END) AS not_due_minor,
            SUM(CASE WHEN d.issue_date <= :cei_start
                     THEN d.amount_minor - COALESCE(a.applied_begin, 0) ELSE 0 END)
                AS begin_open_minor,
            SUM(CASE WHEN d.issue_date > :cei_start THEN d.amount_minor ELSE 0 END)
                AS cei_sales_minor,
            {", ".join(sales)}
        FROM documents d
        LEFT JOIN (
            SELECT invoice_id, SUM(amount_minor) AS applied,
                   SUM(CASE WHEN date <= :cei_start THEN amount_minor ELSE 0 END)
                       AS applied_begin
            FROM allocations WHERE date <= :as_of GROUP BY invoice_id
        ) a ON a.invoice_id = d.id
        WHERE d.kind = 'invoice' AND d.status <> 'cancelled' AND d.issue_date <= :as_of
          {where_customer}
        GROUP BY {group}
    """
    stmt = _date_params(sql, ["as_of", "cei_start", *[f"b{k}" for k in range(1, n + 1)]])
    result = conn.execute(stmt, params)
    columns = list(result.keys())
    schema = {c: pl.Int64 for c in columns}
    schema["currency"] = pl.String
    frame = pl.DataFrame(result.fetchall(), schema=schema, orient="row")
    money = [c for c in columns if c not in keys]
    frame = frame.with_columns([pl.col(c).fill_null(0) for c in money])
    return frame.filter(pl.any_horizontal([pl.col(c) != 0 for c in money]))


def settled_invoices(
    conn: Connection,
    as_of: dt.date,
    since: dt.date,
    *,
    customer_id: int | None = None,
) -> pl.DataFrame:
    """Invoices fully settled as of `as_of` whose settlement date is in (since, as_of].

    Settled = allocations dated on or before `as_of` cover the whole amount (amount > 0);
    settlement date = the latest of those allocation dates (the one that brought the open
    amount to zero). Columns: customer_id, currency, amount_minor, issue_date, due_date,
    settled_on.
    """
    params: dict[str, object] = {"as_of": as_of, "since": since}
    where_customer = ""
    if customer_id is not None:
        params["customer_id"] = customer_id
        where_customer = "AND d.customer_id = :customer_id"
    sql = f"""
        SELECT d.customer_id, d.currency, d.amount_minor, d.issue_date, d.due_date,
               a.settled_on
        FROM (
            SELECT invoice_id, SUM(amount_minor) AS applied, MAX(date) AS settled_on
            FROM allocations WHERE date <= :as_of
            GROUP BY invoice_id
            HAVING MAX(date) > :since
        ) a
        JOIN documents d ON d.id = a.invoice_id
        WHERE d.kind = 'invoice' AND d.status <> 'cancelled' AND d.issue_date <= :as_of
          AND d.amount_minor > 0 AND a.applied >= d.amount_minor
          {where_customer}
    """
    result = conn.execute(_date_params(sql, ["as_of", "since"]), params)
    rows = result.fetchall()
    schema = {
        "customer_id": pl.Int64, "currency": pl.String, "amount_minor": pl.Int64,
        "issue_date": None, "due_date": None, "settled_on": None,
    }  # fmt: skip
    if not rows:
        schema.update(issue_date=pl.Date, due_date=pl.Date, settled_on=pl.Date)
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(
        rows,
        schema=[(k, v) if v is not None else k for k, v in schema.items()],
        orient="row",
    )
    return _as_date(frame, ["issue_date", "due_date", "settled_on"])
