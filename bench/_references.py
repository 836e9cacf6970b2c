"""Reference aging computations over the generated CSV files: one DuckDB query, and pandas.

Both reproduce what encours stores when the three files are imported into an empty ledger
(customers, then invoices, then payments) and positions are read as of `as_of`:

1. a credit note with `applies_to` is applied to that invoice, credit notes of one invoice in
   (issue date, number) order, each capped at what is still open; the rest is unapplied
   credit of the credit note's customer; credit notes without `applies_to` stay unapplied;
2. an invoice with a `paid_date` is settled: a settlement payment of what is still open;
3. payments naming an invoice pay it, capped at what is open (the excess is unapplied cash);
4. payments naming none are allocated per customer oldest due first — (due date, issue
   date, invoice number) — to the customer's undisputed invoices still open; each invoice
   takes at most its open amount, what remains is unapplied cash. The total of a customer's
   unreferenced cash is laid over its open invoices in that order, so each invoice receives
   clamp(cash - open amount of the invoices before it, 0, its open amount): window functions,
   no loop.
5. aging as of `as_of`: days overdue = as_of - due date; not due when <= 0 (an invoice due on
   the as-of day is not due); buckets 1-30, 31-60, 61-90, 91-120, 121+ days.

Ties of (customer, due date, issue date) are broken by invoice number; encours breaks them by
its document id, i.e. file order, which is invoice-number order in the generated files. Tied
invoices fall in the same bucket, so the bucket amounts do not depend on the tie-break at all.

Assumptions checked by `preconditions` (they hold for the generator's files as of its end
date): every date is on or before `as_of` (so every allocation encours makes is effective),
every due date is given, amounts are positive, every payment naming an invoice names one of
the same customer and currency, and each customer's unreferenced payments share one currency.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 30), (31, 60), (61, 90), (91, 120), (121, None))


def bucket_key(low: int, high: int | None) -> str:
    return f"d{low}_plus" if high is None else f"d{low}_{high}"


BUCKET_COLUMNS = [f"{bucket_key(lo, hi)}_minor" for lo, hi in BUCKETS]
COMPARED = [
    "open_invoices", "invoices_open_minor", "not_due_minor", *BUCKET_COLUMNS, "overdue_minor",
    "unapplied_cash_minor", "unapplied_credit_minor", "balance_minor",
]  # fmt: skip
TRUE_VALUES = ("true", "yes", "1", "oui", "vrai", "y", "t")


# -- DuckDB ----------------------------------------------------------------------------------


def _csv(path: Path, types: dict[str, str]) -> str:
    cols = ", ".join(f"'{k}': '{v}'" for k, v in types.items())
    return f"read_csv('{path}', header = true, delim = ',', types = {{{cols}}})"


def duckdb_sources(data: Path) -> dict[str, str]:
    """The three files as DuckDB table expressions (amounts parsed as exact decimals)."""
    return {
        "customers_src": _csv(
            data / "customers.csv",
            {"customer_id": "VARCHAR", "name": "VARCHAR", "credit_limit": "DECIMAL(18,2)"},
        ),
        "invoices_src": _csv(
            data / "invoices.csv",
            {
                "invoice_number": "VARCHAR",
                "customer_id": "VARCHAR",
                "issue_date": "DATE",
                "due_date": "DATE",
                "amount": "DECIMAL(18,2)",
                "currency": "VARCHAR",
                "paid_date": "DATE",
                "disputed": "BOOLEAN",
                "document_type": "VARCHAR",
                "applies_to": "VARCHAR",
            },
        ),
        "payments_src": _csv(
            data / "payments.csv",
            {
                "payment_id": "VARCHAR",
                "customer_id": "VARCHAR",
                "date": "DATE",
                "amount": "DECIMAL(18,2)",
                "currency": "VARCHAR",
                "invoice_number": "VARCHAR",
            },
        ),
    }


def duckdb_aging_sql(as_of: dt.date, sources: dict[str, str]) -> str:
    """One SQL statement: per customer and currency, the aging of open invoices and the
    unapplied cash / credit, with the FIFO allocation of unreferenced payments."""
    a = f"DATE '{as_of.isoformat()}'"
    buckets = []
    for low, high in BUCKETS:
        cond = f"f.due_date <= {a} - INTERVAL {low} DAY"
        if high is not None:
            cond += f" AND f.due_date >= {a} - INTERVAL {high} DAY"
        buckets.append(
            f"COALESCE(SUM(f.open4) FILTER (WHERE {cond}), 0) AS {bucket_key(low, high)}_minor"
        )
    s = sources
    return f"""
WITH docs AS (
    SELECT invoice_number, customer_id, issue_date, due_date, currency, paid_date, applies_to,
           CAST(amount * 100 AS BIGINT) AS amount_minor,
           COALESCE(document_type, 'invoice') AS kind, COALESCE(disputed, false) AS disputed
    FROM {s["invoices_src"]}
),
inv AS (SELECT * FROM docs WHERE kind = 'invoice'),
cn AS (
    -- each credit note naming an invoice takes min(its amount, what the earlier ones left)
    SELECT c.customer_id, c.currency, c.amount_minor, c.applies_to,
           CASE WHEN i.invoice_number IS NULL THEN 0 ELSE
             LEAST(c.amount_minor, GREATEST(0, i.amount_minor
               - (SUM(c.amount_minor) OVER (PARTITION BY c.applies_to
                    ORDER BY c.issue_date, c.invoice_number ROWS UNBOUNDED PRECEDING)
                  - c.amount_minor)))
           END AS applied
    FROM docs c LEFT JOIN inv i ON i.invoice_number = c.applies_to
    WHERE c.kind = 'credit_note'
),
cn_by_inv AS (
    SELECT applies_to AS invoice_number, SUM(applied) AS cn_applied
    FROM cn WHERE applied > 0 GROUP BY applies_to
),
pays AS (
    SELECT customer_id, currency, invoice_number, CAST(amount * 100 AS BIGINT) AS amount_minor
    FROM {s["payments_src"]}
),
named AS (
    SELECT invoice_number, SUM(amount_minor) AS paid
    FROM pays WHERE invoice_number IS NOT NULL GROUP BY invoice_number
),
loose AS (
    SELECT customer_id, ANY_VALUE(currency) AS currency, SUM(amount_minor) AS cash
    FROM pays WHERE invoice_number IS NULL GROUP BY customer_id
),
steps AS (
    SELECT i.invoice_number, i.customer_id, i.currency, i.issue_date, i.due_date,
           i.disputed, i.paid_date,
           i.amount_minor - COALESCE(c.cn_applied, 0) AS open1, COALESCE(n.paid, 0) AS paid
    FROM inv i
    LEFT JOIN cn_by_inv c ON c.invoice_number = i.invoice_number
    LEFT JOIN named n ON n.invoice_number = i.invoice_number
),
named_applied AS (
    SELECT *, CASE WHEN paid_date IS NULL THEN open1 ELSE 0 END AS open2
    FROM steps
),
after_named AS (
    SELECT *, LEAST(open2, paid) AS paid_applied, open2 - LEAST(open2, paid) AS open3,
           NOT disputed AND open2 - LEAST(open2, paid) > 0 AS eligible
    FROM named_applied
),
fifo AS (
    SELECT a.*,
           CASE WHEN a.eligible THEN LEAST(a.open3, GREATEST(0, COALESCE(l.cash, 0)
             - (SUM(CASE WHEN a.eligible THEN a.open3 ELSE 0 END) OVER (
                  PARTITION BY a.customer_id ORDER BY a.due_date, a.issue_date, a.invoice_number
                  ROWS UNBOUNDED PRECEDING) - a.open3)))
           ELSE 0 END AS loose_applied
    FROM after_named a LEFT JOIN loose l ON l.customer_id = a.customer_id
),
f AS (SELECT *, open3 - loose_applied AS open4 FROM fifo),
aging AS (
    SELECT f.customer_id, f.currency,
           COUNT(*) FILTER (WHERE f.open4 <> 0) AS open_invoices,
           COALESCE(SUM(f.open4), 0) AS invoices_open_minor,
           COALESCE(SUM(f.open4) FILTER (WHERE f.due_date >= {a}), 0) AS not_due_minor,
           {", ".join(buckets)},
           COALESCE(SUM(f.open4) FILTER (WHERE f.due_date < {a}), 0) AS overdue_minor
    FROM f WHERE f.issue_date <= {a} AND f.open4 <> 0
    GROUP BY f.customer_id, f.currency
),
named_excess AS (
    SELECT customer_id, currency, SUM(paid - paid_applied) AS amount
    FROM after_named WHERE paid > paid_applied GROUP BY customer_id, currency
),
loose_used AS (
    SELECT customer_id, SUM(loose_applied) AS used FROM f GROUP BY customer_id
),
cash AS (
    SELECT COALESCE(e.customer_id, l.customer_id) AS customer_id,
           COALESCE(e.currency, l.currency) AS currency,
           COALESCE(e.amount, 0) + COALESCE(l.cash - COALESCE(u.used, 0), 0)
             AS unapplied_cash_minor
    FROM named_excess e
    FULL JOIN (loose l LEFT JOIN loose_used u ON u.customer_id = l.customer_id)
      ON e.customer_id = l.customer_id AND e.currency = l.currency
),
credit AS (
    SELECT customer_id, currency, SUM(amount_minor - applied) AS unapplied_credit_minor
    FROM cn GROUP BY customer_id, currency
),
pos AS (
    SELECT COALESCE(g.customer_id, k.customer_id, r.customer_id) AS customer_code,
           COALESCE(g.currency, k.currency, r.currency) AS currency,
           COALESCE(g.open_invoices, 0) AS open_invoices,
           COALESCE(g.invoices_open_minor, 0) AS invoices_open_minor,
           COALESCE(g.not_due_minor, 0) AS not_due_minor,
           {", ".join(f"COALESCE(g.{c}, 0) AS {c}" for c in BUCKET_COLUMNS)},
           COALESCE(g.overdue_minor, 0) AS overdue_minor,
           COALESCE(k.unapplied_cash_minor, 0) AS unapplied_cash_minor,
           COALESCE(r.unapplied_credit_minor, 0) AS unapplied_credit_minor
    FROM aging g
    FULL JOIN cash k ON k.customer_id = g.customer_id AND k.currency = g.currency
    FULL JOIN credit r ON r.customer_id = COALESCE(g.customer_id, k.customer_id)
                      AND r.currency = COALESCE(g.currency, k.currency)
)
SELECT p.customer_code, p.currency, CAST(p.open_invoices AS BIGINT) AS open_invoices,
       {", ".join(f"CAST(p.{c} AS BIGINT) AS {c}" for c in COMPARED[1:-1])},
       CAST(p.invoices_open_minor - p.unapplied_cash_minor - p.unapplied_credit_minor
            AS BIGINT) AS balance_minor,
       c.name, CAST(c.credit_limit * 100 AS BIGINT) AS credit_limit_minor
FROM pos p LEFT JOIN {s["customers_src"]} c ON c.customer_id = p.customer_code
WHERE p.open_invoices <> 0 OR p.unapplied_cash_minor <> 0 OR p.unapplied_credit_minor <> 0
ORDER BY balance_minor DESC, customer_code
"""


def duckdb_preconditions_sql(as_of: dt.date, sources: dict[str, str]) -> str:
    a = f"DATE '{as_of.isoformat()}'"
    s = sources
    return f"""
WITH docs AS (SELECT * FROM {s["invoices_src"]}),
pays AS (SELECT * FROM {s["payments_src"]}),
inv AS (SELECT * FROM docs WHERE COALESCE(document_type, 'invoice') = 'invoice')
SELECT
  (SELECT COUNT(*) FROM docs WHERE issue_date > {a} OR paid_date > {a}) AS docs_after_as_of,
  (SELECT COUNT(*) FROM pays WHERE date > {a}) AS payments_after_as_of,
  (SELECT COUNT(*) FROM docs WHERE due_date IS NULL) AS docs_without_due_date,
  (SELECT COUNT(*) FROM docs WHERE amount <= 0) + (SELECT COUNT(*) FROM pays WHERE amount <= 0)
    AS non_positive_amounts,
  (SELECT COUNT(*) FROM pays p JOIN inv i ON i.invoice_number = p.invoice_number
    WHERE i.customer_id <> p.customer_id OR i.currency <> p.currency) AS cross_payments,
  (SELECT COUNT(*) FROM pays p WHERE p.invoice_number IS NOT NULL
    AND p.invoice_number NOT IN (SELECT invoice_number FROM inv)) AS unknown_invoices_paid,
  (SELECT COUNT(*) FROM (SELECT customer_id FROM pays WHERE invoice_number IS NULL
    GROUP BY customer_id HAVING COUNT(DISTINCT currency) > 1)) AS mixed_currency_customers,
  (SELECT COUNT(*) FROM docs WHERE paid_date IS NOT NULL) AS settled_in_file
"""


def duckdb_aging(con, data: Path, as_of: dt.date, preloaded: bool = False):  # noqa: ANN001, ANN201
    """Run the query, reading the CSVs (or the tables `load_duckdb_tables` made when
    `preloaded`); the result as a polars frame (via Arrow)."""
    sources = (
        {"customers_src": "customers_t", "invoices_src": "invoices_t", "payments_src": "payments_t"}
        if preloaded
        else duckdb_sources(data)
    )
    return con.sql(duckdb_aging_sql(as_of, sources)).pl()


def load_duckdb_tables(con, data: Path) -> None:  # noqa: ANN001
    for name, expr in duckdb_sources(data).items():
        con.execute(f"CREATE OR REPLACE TABLE {name.replace('_src', '_t')} AS SELECT * FROM {expr}")


def preconditions(data: Path, as_of: dt.date) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    row = con.sql(duckdb_preconditions_sql(as_of, duckdb_sources(data)))
    return dict(zip(row.columns, row.fetchone(), strict=True))


# -- pandas ----------------------------------------------------------------------------------


def pandas_aging(data: Path, as_of: dt.date):  # noqa: ANN201
    """The same figures with pandas, written the straightforward way (read_csv, merge,
    groupby, cumsum). Returns a pandas DataFrame with the columns of the DuckDB query."""
    import numpy as np
    import pandas as pd

    def cents(s: pd.Series) -> pd.Series:
        return (s * 100).round().astype("int64")

    docs = pd.read_csv(
        data / "invoices.csv",
        usecols=["invoice_number", "customer_id", "issue_date", "due_date", "amount",
                 "currency", "paid_date", "disputed", "document_type", "applies_to"],
        dtype={"invoice_number": str, "customer_id": str, "currency": str, "disputed": str,
               "document_type": str, "applies_to": str, "amount": "float64"},
        parse_dates=["issue_date", "due_date", "paid_date"],
    )  # fmt: skip
    pays = pd.read_csv(
        data / "payments.csv",
        usecols=["payment_id", "customer_id", "date", "amount", "currency", "invoice_number"],
        dtype={"payment_id": str, "customer_id": str, "currency": str, "invoice_number": str,
               "amount": "float64"},
        parse_dates=["date"],
    )  # fmt: skip
    customers = pd.read_csv(
        data / "customers.csv",
        usecols=["customer_id", "name", "credit_limit"],
        dtype={"customer_id": str, "name": str, "credit_limit": "float64"},
    )
    docs["amount_minor"] = cents(docs["amount"])
    pays["amount_minor"] = cents(pays["amount"])
    docs["kind"] = docs["document_type"].fillna("invoice").str.strip().str.lower()
    docs["disputed"] = docs["disputed"].fillna("false").str.strip().str.lower().isin(TRUE_VALUES)
    inv = docs[docs["kind"] == "invoice"].copy()
    cn = docs[docs["kind"] == "credit_note"].copy()

    # 1. credit notes, in (issue date, number) order per invoice, capped
    cn = cn.sort_values(["issue_date", "invoice_number"])
    cn = cn.merge(
        inv[["invoice_number", "amount_minor"]].rename(
            columns={"invoice_number": "applies_to", "amount_minor": "inv_amount"}
        ),
        on="applies_to",
        how="left",
    )
    prior = cn.groupby("applies_to")["amount_minor"].cumsum() - cn["amount_minor"]
    cn["applied"] = np.where(
        cn["inv_amount"].notna(),
        np.minimum(cn["amount_minor"], (cn["inv_amount"] - prior).clip(lower=0)),
        0,
    ).astype("int64")
    cn_by_inv = cn.groupby("applies_to")["applied"].sum().rename("cn_applied")
    inv = inv.merge(cn_by_inv, left_on="invoice_number", right_index=True, how="left")
    inv["open1"] = inv["amount_minor"] - inv["cn_applied"].fillna(0).astype("int64")
    # 2. settlements
    inv["open2"] = np.where(inv["paid_date"].isna(), inv["open1"], 0)
    # 3. payments naming an invoice
    named = pays[pays["invoice_number"].notna()]
    paid = named.groupby("invoice_number")["amount_minor"].sum().rename("paid")
    inv = inv.merge(paid, left_on="invoice_number", right_index=True, how="left")
    inv["paid"] = inv["paid"].fillna(0).astype("int64")
    inv["paid_applied"] = np.minimum(inv["open2"], inv["paid"])
    inv["open3"] = inv["open2"] - inv["paid_applied"]
    # 4. unreferenced payments, oldest due first over undisputed open invoices
    loose = pays[pays["invoice_number"].isna()]
    cash = loose.groupby("customer_id").agg(cash=("amount_minor", "sum"),
                                            cash_currency=("currency", "first"))  # fmt: skip
    inv = inv.sort_values(["customer_id", "due_date", "issue_date", "invoice_number"])
    inv["eligible"] = ~inv["disputed"] & (inv["open3"] > 0)
    inv["elig_open"] = np.where(inv["eligible"], inv["open3"], 0)
    before = inv.groupby("customer_id")["elig_open"].cumsum() - inv["elig_open"]
    inv = inv.merge(cash["cash"], left_on="customer_id", right_index=True, how="left")
    inv["cash"] = inv["cash"].fillna(0).astype("int64")
    inv["loose_applied"] = np.where(
        inv["eligible"], np.minimum(inv["open3"], (inv["cash"] - before).clip(lower=0)), 0
    )
    inv["open4"] = inv["open3"] - inv["loose_applied"]
    # 5. aging
    as_of_ts = pd.Timestamp(as_of)
    o = inv[(inv["issue_date"] <= as_of_ts) & (inv["open4"] != 0)].copy()
    days = (as_of_ts - o["due_date"]).dt.days
    o["not_due_minor"] = np.where(days <= 0, o["open4"], 0)
    o["overdue_minor"] = np.where(days > 0, o["open4"], 0)
    for (low, high), col in zip(BUCKETS, BUCKET_COLUMNS, strict=True):
        inside = (days >= low) if high is None else (days >= low) & (days <= high)
        o[col] = np.where(inside, o["open4"], 0)
    aging = o.groupby(["customer_id", "currency"]).agg(
        open_invoices=("open4", "size"),
        invoices_open_minor=("open4", "sum"),
        not_due_minor=("not_due_minor", "sum"),
        **{c: (c, "sum") for c in BUCKET_COLUMNS},
        overdue_minor=("overdue_minor", "sum"),
    )
    # unapplied cash: excess of named payments + what the FIFO left of unreferenced cash
    excess = (
        inv.assign(excess=inv["paid"] - inv["paid_applied"])
        .groupby(["customer_id", "currency"])["excess"]
        .sum()
    )
    used = inv.groupby("customer_id")["loose_applied"].sum()
    left = (cash["cash"] - used.reindex(cash.index, fill_value=0)).to_frame("left")
    left["currency"] = cash["cash_currency"]
    left = left.reset_index().set_index(["customer_id", "currency"])["left"]
    unapplied_cash = excess.add(left, fill_value=0).rename("unapplied_cash_minor")
    unapplied_credit = (
        cn.assign(rest=cn["amount_minor"] - cn["applied"])
        .groupby(["customer_id", "currency"])["rest"]
        .sum()
        .rename("unapplied_credit_minor")
    )
    pos = aging.join(unapplied_cash, how="outer").join(unapplied_credit, how="outer")
    pos = pos.fillna(0).astype("int64").reset_index()
    pos = pos.rename(columns={"customer_id": "customer_code"})
    pos = pos[
        (pos["open_invoices"] != 0)
        | (pos["unapplied_cash_minor"] != 0)
        | (pos["unapplied_credit_minor"] != 0)
    ]
    pos["balance_minor"] = (
        pos["invoices_open_minor"] - pos["unapplied_cash_minor"] - pos["unapplied_credit_minor"]
    )
    customers["credit_limit_minor"] = (customers["credit_limit"] * 100).round().astype("Int64")
    pos = pos.merge(
        customers[["customer_id", "name", "credit_limit_minor"]].rename(
            columns={"customer_id": "customer_code"}
        ),
        on="customer_code",
        how="left",
    )
    return pos.sort_values(["balance_minor", "customer_code"], ascending=[False, True])
