"""What the dunning run may still claim per invoice: penalties and the fixed indemnity net
of what was already invoiced (`encours charges invoice`) or waived (`encours charges
waive`), for the whole portfolio at once.

`encours.collections.legal.late_invoices` nets one customer's amounts with `_settled`;
this module is its set-based counterpart for the dunning engine: one query over the
`penalties.invoiced` / `penalties.waived` audit records (each records, per invoice number,
the penalties and indemnity it settled, in minor units), flattened into a frame and
summed per (customer code, invoice number), then subtracted from the amounts computed as
of the day (never below zero).

Charge invoices themselves (numbers starting with `legal.CHARGE_PREFIX`, "PEN-") are owed
and listed like any invoice, but bear neither penalties nor the indemnity.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Connection, select

from encours.collections.legal import AUDIT, CHARGE_PREFIX, SETTLED_ACTIONS

SETTLED_SCHEMA: dict[str, Any] = {
    "customer_code": pl.String,
    "number": pl.String,
    "settled_penalties_minor": pl.Int64,
    "settled_indemnity_minor": pl.Int64,
}


def is_charge_invoice(number: pl.Expr | None = None) -> pl.Expr:
    """True for the charge invoices (penalties invoiced on their own, "PEN-...")."""
    column = pl.col("number") if number is None else number
    return column.str.starts_with(CHARGE_PREFIX).fill_null(False)


def settled_claims(conn: Connection, customer_code: str | None = None) -> pl.DataFrame:
    """Per (customer_code, number): the penalties and indemnity (minor units) already
    invoiced or waived, summed over every record (one query: the whole portfolio, or the
    customer `customer_code`)."""
    query = select(AUDIT.c.entity_key, AUDIT.c.after).where(
        AUDIT.c.entity == "customer", AUDIT.c.action.in_(SETTLED_ACTIONS)
    )
    if customer_code is not None:
        query = query.where(AUDIT.c.entity_key == customer_code)
    rows = [
        (code, number, int(amounts.get("penalties") or 0), int(amounts.get("indemnity") or 0))
        for code, after in conn.execute(query)
        for number, amounts in ((after or {}).get("lines") or {}).items()
    ]
    frame = pl.DataFrame(rows, schema=SETTLED_SCHEMA, orient="row")
    return frame.group_by("customer_code", "number").agg(
        pl.col("settled_penalties_minor").sum(), pl.col("settled_indemnity_minor").sum()
    )


def net_claims(lines: pl.DataFrame, settled: pl.DataFrame) -> pl.DataFrame:
    """`lines` (customer_code, number, penalties_minor, indemnity_minor, ...) with the
    amounts net of `settled` (see :func:`settled_claims`), never below zero, and zero on
    the charge invoices."""
    charge = is_charge_invoice()
    return (
        lines.join(settled, on=["customer_code", "number"], how="left")
        .with_columns(
            penalties_minor=pl.when(charge)
            .then(0)
            .otherwise(pl.col("penalties_minor") - pl.col("settled_penalties_minor").fill_null(0))
            .clip(lower_bound=0)
            .cast(pl.Int64),
            indemnity_minor=pl.when(charge)
            .then(0)
            .otherwise(pl.col("indemnity_minor") - pl.col("settled_indemnity_minor").fill_null(0))
            .clip(lower_bound=0)
            .cast(pl.Int64),
        )
        .drop("settled_penalties_minor", "settled_indemnity_minor")
    )


__all__ = ["SETTLED_SCHEMA", "is_charge_invoice", "net_claims", "settled_claims"]
