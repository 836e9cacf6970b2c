"""Set-based queries of the ledger's positions as of a day.

Every query counts only documents issued, payments received and allocations effective on
or before the as-of date, so that any past day can be replayed. The open amount of an
invoice = its amount - the allocations to it dated on or before the as-of date.
These are the only aging computations of encours: reports, KPIs, the web and the risk
modules all read positions from here.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Connection

from encours.domain.aging import Bucket
from encours.store.frames import query_frame

# Open amount of an invoice = its amount - the allocations to it dated on or before as_of.
# Each dialect gets the formulation its planner runs best; all give the same rows.
#
# PostgreSQL: one hash join of the documents with the allocations, grouped by document
# (instead of joining a pre-aggregated subquery: one hash table instead of two).
# SQLite: a scan of the table (NOT INDEXED: reading it through an index would fetch each row
# at random) and, per row, a correlated SUM over the covering index of the allocations.
# `LIMIT -1 OFFSET 0` keeps that subquery from being flattened into the outer query, which
# would evaluate the correlated SUM once per reference to the open amount.

_OPEN_INVOICES_PG = """
    SELECT d.id AS document_id, d.customer_id, d.currency, d.due_date, d.issue_date,
           d.disputed, d.amount_minor - COALESCE(SUM(a.amount_minor), 0) AS open_minor
    FROM documents d
    LEFT JOIN allocations a ON a.invoice_id = d.id AND a.date <= :as_of
    WHERE d.kind = 'invoice' AND d.status <> 'cancelled' AND d.issue_date <= :as_of {filter}
    GROUP BY d.id
    HAVING d.amount_minor - COALESCE(SUM(a.amount_minor), 0) <> 0
"""

_OPEN_INVOICES_SQLITE = """
    SELECT * FROM (
        SELECT d.id AS document_id, d.customer_id, d.currency, d.due_date, d.issue_date,
               d.disputed,
               d.amount_minor - COALESCE((
                   SELECT SUM(a.amount_minor) FROM allocations a
                   WHERE a.invoice_id = d.id AND a.date <= :as_of), 0) AS open_minor
        FROM documents d {hint}
        WHERE d.kind = 'invoice' AND d.status <> 'cancelled' AND d.issue_date <= :as_of {filter}
        LIMIT -1 OFFSET 0
    ) WHERE open_minor <> 0
"""

_UNAPPLIED_CASH_PG = """
    SELECT customer_id, currency, SUM(unapplied) AS amount FROM (
        SELECT p.customer_id, p.currency, p.amount_minor - COALESCE(SUM(a.amount_minor), 0)
               AS unapplied
        FROM payments p
        LEFT JOIN allocations a ON a.payment_id = p.id AND a.date <= :as_of
        WHERE p.date <= :as_of
        GROUP BY p.id
    ) p
    WHERE unapplied <> 0
    GROUP BY customer_id, currency
"""

_UNAPPLIED_CASH_SQLITE = """
    SELECT customer_id, currency, SUM(unapplied) AS amount FROM (
        SELECT p.customer_id, p.currency,
               p.amount_minor - COALESCE((
                   SELECT SUM(a.amount_minor) FROM allocations a
                   WHERE a.payment_id = p.id AND a.date <= :as_of), 0) AS unapplied
        FROM payments p NOT INDEXED
        WHERE p.date <= :as_of
        LIMIT -1 OFFSET 0
    )
    WHERE unapplied <> 0
    GROUP BY customer_id, currency
"""

_UNAPPLIED_CREDIT_PG = """
    SELECT customer_id, currency, SUM(unapplied) AS amount FROM (
        SELECT d.customer_id, d.currency, d.amount_minor - COALESCE(SUM(a.amount_minor), 0)
               AS unapplied
        FROM documents d
        LEFT JOIN allocations a ON a.credit_note_id = d.id AND a.date <= :as_of
        WHERE d.kind = 'credit_note' AND d.status <> 'cancelled' AND d.issue_date <= :as_of
        GROUP BY d.id
    ) d
    WHERE unapplied <> 0
    GROUP BY customer_id, currency
"""

_UNAPPLIED_CREDIT_SQLITE = """
    SELECT customer_id, currency, SUM(unapplied) AS amount FROM (
        SELECT d.customer_id, d.currency,
               d.amount_minor - COALESCE((
                   SELECT SUM(a.amount_minor) FROM allocations a
                   WHERE a.credit_note_id = d.id AND a.date <= :as_of), 0) AS unapplied
        FROM documents d NOT INDEXED
        WHERE d.kind = 'credit_note' AND d.status <> 'cancelled' AND d.issue_date <= :as_of
        LIMIT -1 OFFSET 0
    )
    WHERE unapplied <> 0
    GROUP BY customer_id, currency
"""


def _sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _open_invoices_sql(conn: Connection, customer_filter: bool = False) -> str:
    """The open invoices as of :as_of (of :customer_id only with `customer_filter`)."""
    condition = "AND d.customer_id = :customer_id" if customer_filter else ""
    if _sqlite(conn):
        # one customer: its documents through ix_documents_customer_due; all: a table scan
        hint = "" if customer_filter else "NOT INDEXED"
        return _OPEN_INVOICES_SQLITE.format(hint=hint, filter=condition)
    return _OPEN_INVOICES_PG.format(filter=condition)


_UNAPPLIED_SCHEMA = {"customer_id": pl.Int64, "currency": pl.String, "amount": pl.Int64}


def aging_by_customer(
    conn: Connection, as_of: dt.date, buckets: tuple[Bucket, ...]
) -> pl.DataFrame:
    """Per customer and currency: open invoices split into not due and aging buckets.

    Columns: customer_id, currency, open_invoices, invoices_open_minor, not_due_minor,
    one `<bucket.key>_minor` per bucket, overdue_minor, oldest_due_date.
    """
    params: dict[str, dt.date] = {"as_of": as_of}
    cases = []
    for i, bucket in enumerate(buckets):
        earliest, latest = bucket.due_date_range(as_of)
        params[f"l{i}"] = latest
        cond = f"o.due_date <= :l{i}"
        if earliest is not None:
            params[f"e{i}"] = earliest
            cond += f" AND o.due_date >= :e{i}"
        cases.append(f"SUM(CASE WHEN {cond} THEN o.open_minor ELSE 0 END) AS {bucket.key}_minor")
    sql = f"""
        SELECT o.customer_id, o.currency, COUNT(*) AS open_invoices,
               SUM(o.open_minor) AS invoices_open_minor,
               SUM(CASE WHEN o.due_date >= :as_of THEN o.open_minor ELSE 0 END) AS not_due_minor,
               {", ".join(cases)},
               SUM(CASE WHEN o.due_date < :as_of THEN o.open_minor ELSE 0 END) AS overdue_minor,
               MIN(CASE WHEN o.due_date < :as_of THEN o.due_date END) AS oldest_due_date
        FROM ({_open_invoices_sql(conn)}) o
        GROUP BY o.customer_id, o.currency
    """
    schema: dict[str, pl.DataType] = {
        "customer_id": pl.Int64(), "currency": pl.String(), "open_invoices": pl.Int64(),
        "invoices_open_minor": pl.Int64(), "not_due_minor": pl.Int64(),
    }  # fmt: skip
    schema.update({f"{b.key}_minor": pl.Int64() for b in buckets})
    schema.update({"overdue_minor": pl.Int64(), "oldest_due_date": pl.Date()})
    return query_frame(conn, sql, schema, params)


def unapplied_by_customer(
    conn: Connection, as_of: dt.date, customer_id: int | None = None
) -> pl.DataFrame:
    """Per customer and currency: unapplied cash and unapplied credit notes (positive).

    With `customer_id`, only that customer's payments and credit notes are read (indexed),
    for one-account views such as the statement of account.
    """
    params: dict[str, object] = {"as_of": as_of}
    sqlite = _sqlite(conn)
    cash_sql = _UNAPPLIED_CASH_SQLITE if sqlite else _UNAPPLIED_CASH_PG
    credit_sql = _UNAPPLIED_CREDIT_SQLITE if sqlite else _UNAPPLIED_CREDIT_PG
    if customer_id is not None:
        params["customer_id"] = customer_id
        cash_sql = cash_sql.replace(" NOT INDEXED", "").replace(
            "WHERE p.date <= :as_of", "WHERE p.date <= :as_of AND p.customer_id = :customer_id"
        )
        credit_sql = credit_sql.replace(" NOT INDEXED", "").replace(
            "AND d.issue_date <= :as_of",
            "AND d.issue_date <= :as_of AND d.customer_id = :customer_id",
        )
    cash_f = query_frame(conn, cash_sql, _UNAPPLIED_SCHEMA, params)
    credit_f = query_frame(conn, credit_sql, _UNAPPLIED_SCHEMA, params)
    cash_f = cash_f.rename({"amount": "unapplied_cash_minor"})
    credit_f = credit_f.rename({"amount": "unapplied_credit_minor"})
    return cash_f.join(credit_f, on=["customer_id", "currency"], how="full", coalesce=True)


def open_invoices(conn: Connection, as_of: dt.date, customer_id: int | None = None) -> pl.DataFrame:
    """Every invoice open as of the day, with its open amount and days overdue."""
    sql = f"""
        SELECT o.document_id, d.number, o.customer_id, c.code AS customer_code, o.currency,
               o.issue_date, o.due_date, d.amount_minor, o.open_minor, o.disputed
        FROM ({_open_invoices_sql(conn, customer_filter=customer_id is not None)}) o
        JOIN documents d ON d.id = o.document_id
        JOIN customers c ON c.id = o.customer_id
        ORDER BY o.due_date, d.number
    """
    params: dict[str, object] = {"as_of": as_of}
    if customer_id is not None:
        params["customer_id"] = customer_id
    schema = {
        "document_id": pl.Int64, "number": pl.String, "customer_id": pl.Int64,
        "customer_code": pl.String, "currency": pl.String, "issue_date": pl.Date,
        "due_date": pl.Date, "amount_minor": pl.Int64, "open_minor": pl.Int64,
        "disputed": pl.Boolean,
    }  # fmt: skip
    frame = query_frame(conn, sql, schema, params)
    return frame.with_columns(
        days_overdue=(pl.lit(as_of) - pl.col("due_date")).dt.total_days().clip(lower_bound=0)
    )


def customers_frame(conn: Connection) -> pl.DataFrame:
    """The customer attributes reports show next to positions."""
    sql = (
        "SELECT id AS customer_id, code, name, currency AS customer_currency, country, "
        "segment, account_owner, collector, credit_limit_minor, payment_terms FROM customers"
    )
    schema = {
        "customer_id": pl.Int64, "code": pl.String, "name": pl.String,
        "customer_currency": pl.String, "country": pl.String, "segment": pl.String,
        "account_owner": pl.String, "collector": pl.String, "credit_limit_minor": pl.Int64,
        "payment_terms": pl.String,
    }  # fmt: skip
    return query_frame(conn, sql, schema)
