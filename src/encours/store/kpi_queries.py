"""Set-based SQL behind the receivables KPIs (DSO, CEI, ADD, days to pay, late share).

Same conventions as `encours.store.positions`: plain `text()` SQL with Date-typed bind
parameters and no dialect-specific function, so the query runs unchanged on SQLite and
PostgreSQL. Everything is replayed "as of" a day: only invoices issued, and allocations
effective, on or before that day count. Cancelled invoices never count (the status is the
current one: the ledger does not date cancellations).

`kpi_aggregates` is one pass over the invoices joined to their allocations, grouped per
customer & currency (or per currency for the portfolio). Day counts between two dates
are computed in SQL from a day number built with portable integer arithmetic
(`_day_number`), since neither `date - date` (PostgreSQL) nor `julianday` (SQLite) exists
on both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import Connection, Date, bindparam, text

MONTHS_BACK = 12
GROUPINGS = {
    "customer": ("customer_id", "currency"),
    "portfolio": ("currency",),
}


def _date_params(statement: str, names: list[str]):  # noqa: ANN202
    return text(statement).bindparams(*[bindparam(n, type_=Date) for n in names])


def _yyyymmdd(column: str) -> str:
    """A date column as the integer YYYYMMDD.

    Dates are ISO text on SQLite and render as ISO text when cast on PostgreSQL (with the
    default DateStyle ISO).
    """
    return f"CAST(REPLACE(CAST({column} AS VARCHAR(10)), '-', '') AS INTEGER)"


def _day_number(v: str) -> str:
    """Days since a fixed epoch of the YYYYMMDD integer `v` (proleptic Gregorian).

    days_from_civil with March-based years: y' = year - (month <= 2), m' = (month + 9) mod 12,
    N = 365 y' + y'/4 - y'/100 + y'/400 + (153 m' + 2) / 5 + day (integer divisions;
    every operand is positive, so truncation is the floor on both databases).
    """
    year = f"({v} / 10000)"
    month = f"({v} / 100 - ({v} / 10000) * 100)"
    day = f"({v} - ({v} / 100) * 100)"
    y = f"({year} - CASE WHEN {month} <= 2 THEN 1 ELSE 0 END)"
    mp = f"(CASE WHEN {month} > 2 THEN {month} - 3 ELSE {month} + 9 END)"
    return f"(365 * {y} + {y} / 4 - {y} / 100 + {y} / 400 + (153 * {mp} + 2) / 5 + {day})"


def kpi_aggregates(
    conn: Connection,
    as_of: dt.date,
    boundaries: list[dt.date],
    cei_start: dt.date,
    *,
    grouping: str = "customer",
    customer_id: int | None = None,
) -> pl.DataFrame:
    """Per group: receivables, sales by monthly period and settlement statistics.

    `boundaries` = [as_of, b1, ..., bn] (n = 12): period k is (b[k+1], b[k]], the
    settlement window is (bn, as_of]. Columns, all integers (minor units, counts or
    amount x days), after the group keys:

    - open_minor: open invoices as of `as_of` (amount - allocations dated <= as_of);
    - not_due_minor: the part due on or after `as_of`;
    - begin_open_minor: open invoices as of `cei_start`;
    - cei_sales_minor: invoices issued in (cei_start, as_of];
    - s0..s{n-1}: invoices issued in each monthly period;
    - settled_count, settled_minor: invoices settled in the window, i.e. whose allocations
      dated <= as_of cover their (positive) amount and the latest of them (the settlement
      date) falls in the window;
    - late_count, late_minor: those settled after their due date;
    - pay_days_minor: sum(amount x (settlement date - issue date)) over them;
    - late_days_minor: sum(amount x (settlement date - due date)) over the late ones.

    The inner query aggregates each invoice with its allocations (a merge of two scans in
    id order) and keeps only the invoices that matter (issued or settled in the window,
    or open); the outer one sums them per group. Groups with nothing to report are left
    out.
    """
    keys = GROUPINGS[grouping]
    n = len(boundaries) - 1
    params: dict[str, object] = {"as_of": as_of, "cei_start": cei_start}
    for k, b in enumerate(boundaries[1:], start=1):
        params[f"b{k}"] = b
    only_customer = ""
    if customer_id is not None:
        params["customer_id"] = customer_id
        only_customer = "AND d.customer_id = :customer_id"

    applied = "CAST(SUM(al.amount_minor) AS BIGINT)"
    applied_begin = (
        "CAST(SUM(CASE WHEN al.date <= :cei_start THEN al.amount_minor ELSE 0 END) AS BIGINT)"
    )
    open_ = f"d.amount_minor - COALESCE({applied}, 0)"
    begin = (
        "CASE WHEN d.issue_date <= :cei_start "
        f"THEN d.amount_minor - COALESCE({applied_begin}, 0) ELSE 0 END"
    )
    in_window = f"MAX(al.date) > :b{n}"
    settled = (
        f"CASE WHEN {in_window} AND {applied} >= d.amount_minor AND d.amount_minor > 0 "
        "THEN 1 ELSE 0 END"
    )
    # period index of the issue date: 0 for (b1, as_of], 1 for (b2, b1], ... NULL if older
    period = "CASE " + " ".join(f"WHEN d.issue_date > :b{k + 1} THEN {k}" for k in range(n))
    period += " ELSE -1 END"
    sales = ",\n            ".join(
        f"SUM(CASE WHEN x.period = {k} THEN x.amount_minor ELSE 0 END) AS s{k}" for k in range(n)
    )
    late = f"{settled} = 1 AND MAX(al.date) > d.due_date"
    settled_n, issue_n, due_n = (_day_number(f"x.{c}") for c in ("settled_v", "issue_v", "due_v"))
    group_in = ", ".join(f"d.{k}" for k in keys)
    group_out = ", ".join(f"x.{k}" for k in keys)
    # The inner query hands narrow integer rows to the outer one (which sorts them per
    # group on SQLite): dates are compared inside, and passed on as YYYYMMDD integers only
    # for the invoices settled in the window.
    sql = f"""
        SELECT {group_out},
            SUM(x.open_minor) AS open_minor,
            SUM(x.not_due_minor) AS not_due_minor,
            SUM(x.begin_open_minor) AS begin_open_minor,
            SUM(x.cei_sales_minor) AS cei_sales_minor,
            {sales},
            SUM(x.settled) AS settled_count,
            SUM(x.settled * x.amount_minor) AS settled_minor,
            SUM(x.late) AS late_count,
            SUM(x.late * x.amount_minor) AS late_minor,
            SUM(CASE WHEN x.settled = 1
                     THEN x.amount_minor * ({settled_n} - {issue_n}) ELSE 0 END)
                AS pay_days_minor,
            SUM(CASE WHEN x.late = 1
                     THEN x.amount_minor * ({settled_n} - {due_n}) ELSE 0 END)
                AS late_days_minor
        FROM (
            SELECT {group_in}, d.amount_minor,
                {open_} AS open_minor,
                CASE WHEN d.due_date >= :as_of THEN {open_} ELSE 0 END AS not_due_minor,
                {begin} AS begin_open_minor,
                CASE WHEN d.issue_date > :cei_start THEN d.amount_minor ELSE 0 END
                    AS cei_sales_minor,
                {period} AS period,
                {settled} AS settled,
                CASE WHEN {late} THEN 1 ELSE 0 END AS late,
                CASE WHEN {in_window} THEN {_yyyymmdd("MAX(al.date)")} END AS settled_v,
                CASE WHEN {in_window} THEN {_yyyymmdd("d.issue_date")} END AS issue_v,
                CASE WHEN {in_window} THEN {_yyyymmdd("d.due_date")} END AS due_v
            FROM documents d
            LEFT JOIN allocations al ON al.invoice_id = d.id AND al.date <= :as_of
            WHERE d.kind = 'invoice' AND d.status <> 'cancelled' AND d.issue_date <= :as_of
              {only_customer}
            GROUP BY d.id, {group_in}, d.issue_date, d.due_date, d.amount_minor
            HAVING d.issue_date > :b{n} OR {in_window} OR {open_} <> 0 OR {begin} <> 0
        ) x
        GROUP BY {group_out}
    """
    stmt = _date_params(sql, ["as_of", "cei_start", *[f"b{k}" for k in range(1, n + 1)]])
    result = conn.execute(stmt, params)
    columns = list(result.keys())
    schema: dict[str, Any] = {c: pl.Int64 for c in columns}
    schema["currency"] = pl.String
    frame = pl.DataFrame(result.fetchall(), schema=schema, orient="row")
    values = [c for c in columns if c not in keys]
    frame = frame.with_columns([pl.col(c).fill_null(0) for c in values])
    return frame.filter(pl.any_horizontal([pl.col(c) != 0 for c in values]))
