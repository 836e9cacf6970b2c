"""The loader writes canonical batches to a real database (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlalchemy import func, select

from encours.analytics.portfolio import customer_positions
from encours.domain.aging import parse_buckets
from encours.imports.canonical import (
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
    RowError,
    conform,
)
from encours.imports.load import ImportRejected, load_batch
from encours.store.db import unit_of_work
from encours.store.schema import Allocation, AuditEntry, Document, Payment

D = dt.date


def frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def inv(number, customer, issue, due, amount_minor, **extra):  # noqa: ANN001, ANN003, ANN201
    return {"invoice_number": number, "customer_id": customer, "issue_date": issue,
            "due_date": due, "amount_minor": amount_minor, "currency": "EUR", **extra}  # fmt: skip


def pay(pid, customer, date, amount_minor, invoice=None):  # noqa: ANN001, ANN201
    return {"payment_id": pid, "customer_id": customer, "date": date,
            "amount_minor": amount_minor, "currency": "EUR", "invoice_number": invoice}  # fmt: skip


def load(url: str, kind: str, **frames) -> object:  # noqa: ANN003
    batch = CanonicalBatch(source=f"{kind}.csv", **frames)
    with unit_of_work(url) as conn:
        return load_batch(conn, batch, kind=kind)


def balances(url: str, as_of: dt.date) -> dict[str, tuple[int, int, int]]:
    """code -> (balance, overdue, unapplied cash)."""
    with unit_of_work(url) as conn:
        pos = customer_positions(conn, as_of, parse_buckets())
    return {r["code"]: (r["balance_minor"], r["overdue_minor"], r["unapplied_cash_minor"])
            for r in pos.iter_rows(named=True)}  # fmt: skip


def count(url: str, table) -> int:  # noqa: ANN001
    with unit_of_work(url) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


INVOICES = [
    inv("F1", "C1", D(2024, 1, 10), D(2024, 2, 9), 100_00, customer_name="Alpha SAS"),
    inv("F2", "C1", D(2024, 2, 10), D(2024, 3, 11), 250_00),
    inv("F3", "C2", D(2024, 1, 15), None, 80_00, customer_name="Beta SARL"),
]


def test_invoices_then_payments_allocate_and_replay(db_url: str) -> None:
    report = load(db_url, "invoices", documents=frame(INVOICES, DOCUMENT_SCHEMA))
    assert (report.inserted, report.updated, report.unchanged) == (3, 0, 0)
    # F3 has no due date: computed from the default terms (30 days net).
    with unit_of_work(db_url) as conn:
        due = conn.execute(select(Document.due_date).where(Document.number == "F3")).scalar_one()
    assert due == D(2024, 2, 14)

    payments = [
        pay("P1", "C1", D(2024, 2, 20), 40_00, "F1"),  # partial on F1
        pay("P2", "C1", D(2024, 3, 5), 100_00),  # no invoice: oldest due first
        pay("P3", "C2", D(2024, 3, 1), 100_00, "F3"),  # pays F3, 20.00 left unapplied
    ]
    load(db_url, "payments", payments=frame(payments, PAYMENT_SCHEMA))

    # Before any payment: everything open.
    assert balances(db_url, D(2024, 2, 15)) == {"C1": (350_00, 100_00, 0), "C2": (80_00, 80_00, 0)}
    # After P1 only.
    assert balances(db_url, D(2024, 2, 25))["C1"] == (310_00, 60_00, 0)
    # After P2: 60.00 closes F1, 40.00 goes to F2; F3 paid, 20.00 unapplied on C2.
    after = balances(db_url, D(2024, 3, 10))
    assert after["C1"] == (210_00, 0, 0)
    assert after["C2"] == (-20_00, 0, 20_00)


def test_reimport_changes_nothing_and_a_change_is_audited(db_url: str) -> None:
    docs = frame(INVOICES, DOCUMENT_SCHEMA)
    load(db_url, "invoices", documents=docs)
    pays = frame([pay("P1", "C1", D(2024, 2, 20), 40_00, "F1")], PAYMENT_SCHEMA)
    load(db_url, "payments", payments=pays)
    counts = (count(db_url, Document), count(db_url, Payment), count(db_url, Allocation))
    again = load(db_url, "invoices", documents=docs)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    load(db_url, "payments", payments=pays)
    assert (count(db_url, Document), count(db_url, Payment), count(db_url, Allocation)) == counts

    changed = INVOICES[:1] + [{**INVOICES[1], "amount_minor": 260_00, "disputed": True}]
    report = load(db_url, "invoices", documents=frame(changed, DOCUMENT_SCHEMA))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    with unit_of_work(db_url) as conn:
        entry = conn.execute(
            select(AuditEntry).where(AuditEntry.entity_key == "F2", AuditEntry.action == "update")
        ).one()
    assert entry.before == {"amount_minor": 25000, "disputed": False}
    assert entry.after == {"amount_minor": 26000, "disputed": True}


def test_paid_date_records_settlement_and_replays(db_url: str) -> None:
    rows = [
        inv("F9", "C9", D(2013, 1, 2), D(2013, 2, 1), 55_94, paid_date=D(2013, 1, 15)),
        inv("F10", "C9", D(2013, 3, 1), D(2013, 3, 31), 10_00, paid_date=D(2013, 4, 15)),
    ]
    load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    assert balances(db_url, D(2013, 1, 10))["C9"] == (55_94, 0, 0)
    assert "C9" not in balances(db_url, D(2013, 1, 20))
    assert balances(db_url, D(2013, 4, 5))["C9"] == (10_00, 10_00, 0)
    # Re-import: nothing duplicated; a changed paid date moves the settlement.
    load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    assert count(db_url, Payment) == 2
    moved = [rows[0], {**rows[1], "paid_date": D(2013, 4, 2)}]
    load(db_url, "invoices", documents=frame(moved, DOCUMENT_SCHEMA))
    assert count(db_url, Payment) == 2
    assert "C9" not in balances(db_url, D(2013, 4, 5))
    # An emptied paid date re-opens the invoice.
    reopened = [rows[0], {**rows[1], "paid_date": None}]
    load(db_url, "invoices", documents=frame(reopened, DOCUMENT_SCHEMA))
    assert balances(db_url, D(2013, 5, 1))["C9"] == (10_00, 10_00, 0)


def test_credit_note_applies_to_its_invoice(db_url: str) -> None:
    rows = INVOICES + [
        inv("AV1", "C1", D(2024, 2, 1), D(2024, 2, 1), 30_00, document_type="credit_note",
            applies_to="F1"),
        inv("AV2", "C2", D(2024, 2, 1), D(2024, 2, 1), 5_00, document_type="credit_note"),
    ]  # fmt: skip
    load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    pos = balances(db_url, D(2024, 3, 1))
    assert pos["C1"] == (320_00, 70_00, 0)  # F1 70 open after the credit note, F2 250 not due
    assert pos["C2"] == (75_00, 80_00, 0)  # unapplied credit note nets the balance


def test_bad_rows_reject_the_whole_file(db_url: str) -> None:
    load(db_url, "invoices", documents=frame(INVOICES, DOCUMENT_SCHEMA))
    before = count(db_url, Payment)
    bad = frame([pay("P1", "C1", D(2024, 2, 20), 40_00, "F1"),
                 pay("P2", "C1", D(2024, 2, 21), 10_00, "NOPE"),
                 pay("P3", "ZZ", D(2024, 2, 21), 10_00)], PAYMENT_SCHEMA)  # fmt: skip
    with pytest.raises(ImportRejected) as exc:
        load(db_url, "payments", payments=bad)
    errors = {(e.line, e.column) for e in exc.value.errors}
    assert errors == {(3, "invoice_number"), (4, "customer_id")}
    assert count(db_url, Payment) == before  # nothing half-written

    batch = CanonicalBatch(source="payments.csv", payments=bad)
    with unit_of_work(db_url) as conn:
        report = load_batch(conn, batch, kind="payments", skip_invalid=True)
    assert (report.inserted, report.rejected) == (1, 2)
    assert count(db_url, Payment) == before + 1


def test_parser_errors_reject_unless_skipped(db_url: str) -> None:
    docs = frame(INVOICES, DOCUMENT_SCHEMA)
    error = RowError("invoices.csv", 3, "amount", "abc", "a positive amount")
    batch = CanonicalBatch(source="invoices.csv", documents=docs, errors=[error])
    with pytest.raises(ImportRejected), unit_of_work(db_url) as conn:
        load_batch(conn, batch, kind="invoices")
    assert count(db_url, Document) == 0
    with unit_of_work(db_url) as conn:
        report = load_batch(conn, batch, kind="invoices", skip_invalid=True)
    assert report.inserted == 2 and report.rejected == 1


def test_customers_file_validates_identifiers_and_audits_limit_changes(db_url: str) -> None:
    rows = [
        {"customer_id": "C1", "name": "Alpha SAS", "siren": "732829320",
         "credit_limit_minor": 10_000_00},
        {"customer_id": "C2", "name": "Beta", "siren": "732829321"},
    ]  # fmt: skip
    with pytest.raises(ImportRejected) as exc:
        load(db_url, "customers", customers=frame(rows, CUSTOMER_SCHEMA))
    [error] = exc.value.errors
    assert (error.line, error.column, error.value) == (3, "siren", "732829321")
    ok = [rows[0]]
    assert load(db_url, "customers", customers=frame(ok, CUSTOMER_SCHEMA)).inserted == 1
    assert load(db_url, "customers", customers=frame(ok, CUSTOMER_SCHEMA)).unchanged == 1
    raised = [{**rows[0], "credit_limit_minor": 20_000_00}]
    assert load(db_url, "customers", customers=frame(raised, CUSTOMER_SCHEMA)).updated == 1
    with unit_of_work(db_url) as conn:
        entry = conn.execute(select(AuditEntry).where(AuditEntry.entity == "customer")).one()
    assert entry.before == {"credit_limit_minor": 1000000}
    assert entry.after == {"credit_limit_minor": 2000000}


def test_unapplied_for_one_customer_matches_the_portfolio_query(db_url: str) -> None:
    from encours.store.positions import unapplied_by_customer

    load(db_url, "invoices", documents=frame(INVOICES, DOCUMENT_SCHEMA))
    pays = [pay("P1", "C1", D(2024, 3, 1), 500_00, "F1"), pay("P2", "C2", D(2024, 3, 1), 90_00)]
    load(
        db_url,
        "payments",
        payments=frame(pays, PAYMENT_SCHEMA),
    )
    with unit_of_work(db_url) as conn:
        everyone = unapplied_by_customer(conn, D(2024, 3, 31)).sort("customer_id")
        ids = everyone["customer_id"].to_list()
        single = pl.concat([unapplied_by_customer(conn, D(2024, 3, 31), cid) for cid in ids])
    assert single.sort("customer_id").equals(everyone)
    assert everyone["unapplied_cash_minor"].to_list() == [400_00, 10_00]
