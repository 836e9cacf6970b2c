"""Re-importing a document with an amount below what is already applied to it is rejected
(issue 3a): the row is an error naming the amount already paid or allocated."""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import select
from test_load import frame

from encours.imports.canonical import DOCUMENT_SCHEMA, PAYMENT_SCHEMA, CanonicalBatch
from encours.imports.load import ImportRejected, load_batch
from encours.store.db import unit_of_work
from encours.store.schema import Document

D = dt.date


def inv(number: str, amount_minor: int, **extra: object) -> dict:
    return {"invoice_number": number, "customer_id": "C1", "customer_name": "Alpha SAS",
            "issue_date": D(2024, 1, 10), "due_date": D(2024, 2, 9),
            "amount_minor": amount_minor, "currency": "EUR", **extra}  # fmt: skip


def load(url: str, kind: str, skip_invalid: bool = False, **frames: pl.DataFrame):  # noqa: ANN201
    batch = CanonicalBatch(source=f"{kind}.csv", **frames)
    with unit_of_work(url) as conn:
        return load_batch(conn, batch, kind=kind, skip_invalid=skip_invalid)


def amount(url: str, number: str) -> int:
    with unit_of_work(url) as conn:
        return conn.execute(
            select(Document.amount_minor).where(Document.number == number)
        ).scalar_one()


def _ledger(url: str) -> None:
    load(url, "invoices", documents=frame([inv("F", 2186_07), inv("G", 500_00)], DOCUMENT_SCHEMA))
    payment = {"payment_id": "P1", "customer_id": "C1", "date": D(2024, 2, 1),
               "amount_minor": 2186_07, "currency": "EUR", "invoice_number": "F"}  # fmt: skip
    load(url, "payments", payments=frame([payment], PAYMENT_SCHEMA))


def test_amount_below_allocated_is_rejected(db_url: str) -> None:
    _ledger(db_url)
    rows = [inv("F", 1_00), inv("G", 400_00)]
    try:
        load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    except ImportRejected as exc:
        errors = exc.errors
    else:
        raise AssertionError("the file should have been rejected")
    assert [(e.line, e.column, e.value) for e in errors] == [(2, "amount", "1.00")]
    assert "at least the 2186.07 EUR already paid or allocated" in errors[0].expected
    # Nothing was written: the whole file is rejected.
    assert amount(db_url, "F") == 2186_07
    assert amount(db_url, "G") == 500_00


def test_skip_invalid_writes_the_good_rows_and_allows_amounts_covering(db_url: str) -> None:
    _ledger(db_url)
    rows = [inv("F", 1_00), inv("G", 400_00)]
    report = load(db_url, "invoices", skip_invalid=True, documents=frame(rows, DOCUMENT_SCHEMA))
    assert report.rejected == 1 and report.updated == 1
    assert amount(db_url, "F") == 2186_07
    assert amount(db_url, "G") == 400_00
    # Raising the amount, or keeping it equal to what is paid, is fine.
    rows = [inv("F", 2186_07), inv("G", 400_00)]
    report = load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    assert report.rejected == 0
    rows = [inv("F", 2500_00)]
    report = load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    assert report.updated == 1 and amount(db_url, "F") == 2500_00


def test_settled_invoice_may_be_corrected_and_credit_note_is_checked(db_url: str) -> None:
    # A settlement recorded with the invoice (paid date) follows the corrected amount.
    load(db_url, "invoices",
         documents=frame([inv("S", 300_00, paid_date=D(2024, 2, 5))], DOCUMENT_SCHEMA))  # fmt: skip
    load(db_url, "invoices",
         documents=frame([inv("S", 250_00, paid_date=D(2024, 2, 5))], DOCUMENT_SCHEMA))  # fmt: skip
    assert amount(db_url, "S") == 250_00
    # A credit note applied to an invoice may not fall below what it settles.
    note = {"document_type": "credit_note", "applies_to": "K"}
    rows = [inv("K", 100_00), inv("AV", 60_00, **note)]
    load(db_url, "invoices", documents=frame(rows, DOCUMENT_SCHEMA))
    try:
        load(db_url, "invoices", documents=frame([inv("AV", 10_00, **note)], DOCUMENT_SCHEMA))
    except ImportRejected as exc:
        assert [(e.column, e.value) for e in exc.errors] == [("amount", "10.00")]
        assert "60.00 EUR" in exc.errors[0].expected
    else:
        raise AssertionError("the credit note below its allocation should be rejected")
