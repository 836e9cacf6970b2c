"""Reporting use cases: positions and KPIs as of a day, as frames and JSON-able dicts."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from encours.analytics.portfolio import customer_positions, portfolio_totals
from encours.domain.aging import DEFAULT_SPEC, Bucket, parse_buckets
from encours.i18n import N_, _, gettext
from encours.money import from_minor
from encours.store.db import unit_of_work
from encours.store.frames import query_frame

# Human-facing labels of the report columns and KPI metrics (tables and xlsx sheets). The
# csv/json outputs keep the stable English snake_case keys, for machines.
LABELS: dict[str, str] = {
    "code": N_("Code"),
    "name": N_("Name"),
    "segment": N_("Segment"),
    "currency": N_("Currency"),
    "open_invoices": N_("Open invoices"),
    "balance": N_("Balance"),
    "invoices_open": N_("Open invoices amount"),
    "not_due": N_("Not yet due"),
    "overdue": N_("Overdue"),
    "unapplied_cash": N_("Unapplied cash"),
    "unapplied_credit": N_("Unapplied credit notes"),
    "over_limit": N_("Over limit"),
    "overdue_share_pct": N_("Overdue share (%)"),
    "customers_over_limit": N_("Customers over limit"),
    "credit_limit": N_("Credit limit"),
    "exposure": N_("Exposure"),
    "headroom": N_("Headroom"),
    "limit_used": N_("Limit used"),
    "days_oldest_overdue": N_("Days of the oldest overdue"),
    "as_of": N_("As of"),
    "cei_days": N_("CEI period (days)"),
    "receivables": N_("Receivables"),
    "receivables_minor": N_("Receivables (minor units)"),
    "current": N_("Current receivables (not due)"),
    "current_minor": N_("Current (minor units)"),
    "overdue_minor": N_("Overdue (minor units)"),
    "sales_12m": N_("Sales 12 months"),
    "sales_12m_minor": N_("Sales 12 months (minor units)"),
    "sales_3m": N_("Sales 3 months"),
    "sales_3m_minor": N_("Sales 3 months (minor units)"),
    "cei_begin": N_("CEI opening receivables"),
    "cei_begin_minor": N_("CEI opening receivables (minor units)"),
    "cei_sales": N_("CEI sales"),
    "cei_sales_minor": N_("CEI sales (minor units)"),
    "settled_12m": N_("Invoices settled in 12 months"),
    "settled_12m_minor": N_("Settled in 12 months (minor units)"),
    "dso": N_("DSO"),
    "bpdso": N_("Best possible DSO"),
    "add": N_("Average days delinquent"),
    "cei": N_("CEI (%)"),
    "wadp": N_("Weighted days to pay"),
    "wadl": N_("Weighted days late"),
    "late_share_count": N_("Paid late (% of invoices)"),
    "late_share_amount": N_("Paid late (% of amount)"),
    "metric": N_("Metric"),
    "value": N_("Value"),
}
_BUCKET = re.compile(r"\d+(?:-\d+|\+)")  # an aging bucket label: 1-30, 121+


def label(key: str) -> str:
    """The label of a report column or KPI metric in the current language (the key itself
    when it has none); aging buckets read "1-30 days"."""
    if key in LABELS:
        return gettext(LABELS[key])
    if _BUCKET.fullmatch(key):
        return _("{range} days").format(range=key)
    return key


def for_humans(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with translated column headers and KPI metric names (table, xlsx)."""
    if "metric" in frame.columns:
        frame = frame.with_columns(pl.col("metric").map_elements(label, return_dtype=pl.String))
    names = {c: label(c) for c in frame.columns}
    if len(set(names.values())) != len(names):  # two keys, one label: keep the keys
        return frame
    return frame.rename(names)


def money_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Turn every `*_minor` column into a decimal string column without the suffix.

    Rows may mix currencies; each amount is scaled by its own row's currency.
    """
    out = frame
    for col in [c for c in frame.columns if c.endswith("_minor")]:
        name = col.removesuffix("_minor")
        values = [
            None if v is None else str(from_minor(v, cur))
            for v, cur in zip(frame[col].to_list(), frame["currency"].to_list(), strict=True)
        ]
        out = out.with_columns(pl.Series(name, values, dtype=pl.String)).drop(col)
    return out


def aging_report(
    as_of: dt.date, db_url: str | None = None, bucket_spec: str = DEFAULT_SPEC
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[Bucket, ...]]:
    """(per-customer positions, portfolio totals per currency, buckets)."""
    buckets = parse_buckets(bucket_spec)
    with unit_of_work(db_url) as conn:
        positions = customer_positions(conn, as_of, buckets)
    return positions, portfolio_totals(positions, buckets), buckets


def status(as_of: dt.date, db_url: str | None = None) -> dict[str, object]:
    """Counts and outstanding as of the day (`encours status --json`)."""
    with unit_of_work(db_url) as conn:
        counts = query_frame(
            conn,
            "SELECT (SELECT COUNT(*) FROM customers) AS customers, "
            "(SELECT COUNT(*) FROM documents WHERE kind = 'invoice' AND issue_date <= :d) "
            "AS invoices, "
            "(SELECT COUNT(*) FROM documents WHERE kind = 'credit_note' AND issue_date <= :d) "
            "AS credit_notes, "
            "(SELECT COUNT(*) FROM payments WHERE date <= :d) AS payments",
            {"customers": pl.Int64(), "invoices": pl.Int64(), "credit_notes": pl.Int64(),
             "payments": pl.Int64()},
            {"d": as_of},
        ).row(0, named=True)  # fmt: skip
        buckets = parse_buckets(DEFAULT_SPEC)
        positions = customer_positions(conn, as_of, buckets)
    totals = portfolio_totals(positions, buckets)
    by_currency = {
        row["currency"]: {
            "outstanding": str(from_minor(row["balance_minor"], row["currency"])),
            "open_invoices_amount": str(from_minor(row["invoices_open_minor"], row["currency"])),
            "overdue": str(from_minor(row["overdue_minor"], row["currency"])),
            "unapplied_cash": str(from_minor(row["unapplied_cash_minor"], row["currency"])),
            "open_invoices": row["open_invoices"],
        }
        for row in totals.iter_rows(named=True)
    }
    main = max(totals.iter_rows(named=True), key=lambda r: r["balance_minor"], default=None)
    return {
        "as_of": as_of.isoformat(),
        **counts,
        "open_invoices": int(totals["open_invoices"].sum()) if totals.height else 0,
        "currency": main["currency"] if main else None,
        "outstanding": by_currency[main["currency"]]["outstanding"] if main else "0.00",
        "overdue": by_currency[main["currency"]]["overdue"] if main else "0.00",
        "by_currency": by_currency,
    }


def customer_report(as_of: dt.date, db_url: str | None = None) -> pl.DataFrame:
    """Per customer: position, limit, exposure and payment-behaviour KPIs."""
    from encours.analytics.kpis import customer_kpis

    buckets = parse_buckets(DEFAULT_SPEC)
    with unit_of_work(db_url) as conn:
        positions = customer_positions(conn, as_of, buckets, include_zero=True)
        kpis = customer_kpis(conn, as_of)
    kpis = kpis.select(
        ["customer_id", "currency"] + [c for c in kpis.columns if c not in positions.columns]
    )
    frame = positions.join(kpis, on=["customer_id", "currency"], how="left")
    keep = ["code", "name", "segment", "currency", "balance_minor", "not_due_minor",
            "overdue_minor", "unapplied_cash_minor", "credit_limit_minor", "exposure_minor",
            "headroom_minor", "limit_used", "open_invoices", "days_oldest_overdue"]  # fmt: skip
    extra = [c for c in kpis.columns if c not in ("customer_id", "currency")]
    frame = frame.select(keep + extra).with_columns(pl.col("limit_used").round(3))
    return money_columns(frame)


def kpi_report(as_of: dt.date, db_url: str | None = None) -> pl.DataFrame:
    """Portfolio KPIs per currency as a (metric, currency, value) frame."""
    from encours.analytics.kpis import compute_kpis

    buckets = parse_buckets(DEFAULT_SPEC)
    with unit_of_work(db_url) as conn:
        positions = customer_positions(conn, as_of, buckets)
        kpis = compute_kpis(conn, as_of)
    totals = portfolio_totals(positions, buckets)
    rows: list[dict[str, object]] = []
    for row in totals.iter_rows(named=True):
        cur = row["currency"]
        for name in (
            "balance_minor",
            "invoices_open_minor",
            "not_due_minor",
            "overdue_minor",
            "unapplied_cash_minor",
            "unapplied_credit_minor",
            "over_limit_minor",
        ):
            rows.append({"metric": name.removesuffix("_minor"), "currency": cur,
                         "value": str(from_minor(row[name], cur))})  # fmt: skip
        total = row["invoices_open_minor"] or 0
        share = round(row["overdue_minor"] / total * 100, 1) if total else 0.0
        rows.append({"metric": "overdue_share_pct", "currency": cur, "value": str(share)})
        rows.append({"metric": "customers_over_limit", "currency": cur,
                     "value": str(row["customers_over_limit"])})  # fmt: skip
    for cur, values in kpis.items():
        for name, value in values.items():
            rows.append({"metric": name, "currency": cur,
                         "value": "" if value is None else str(value)})  # fmt: skip
    return pl.DataFrame(rows, schema={"metric": pl.String, "currency": pl.String,
                                      "value": pl.String})  # fmt: skip
