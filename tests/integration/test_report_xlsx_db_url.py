"""XLSX reports hold numbers (not text), and `db upgrade` never prints a password."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
from test_load import frame
from typer.testing import CliRunner

from encours.cli.app import app
from encours.cli.db_cmd import display_url
from encours.imports.canonical import DOCUMENT_SCHEMA, PAYMENT_SCHEMA, CanonicalBatch
from encours.imports.load import load_batch
from encours.store.db import unit_of_work

D = dt.date


def _ledger(url: str) -> None:
    invoices = [
        {"invoice_number": "F1", "customer_id": "10023", "customer_name": "Alpha SAS",
         "issue_date": D(2024, 1, 10), "due_date": D(2024, 2, 9), "amount_minor": 1234567_89,
         "currency": "EUR"},
        {"invoice_number": "F2", "customer_id": "10023", "issue_date": D(2024, 3, 1),
         "due_date": D(2024, 3, 31), "amount_minor": 100_01, "currency": "EUR"},
    ]  # fmt: skip
    payment = {"payment_id": "P1", "customer_id": "10023", "date": D(2024, 3, 5),
               "amount_minor": 10, "currency": "EUR", "invoice_number": "F1"}  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=frame(invoices, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
        load_batch(conn, CanonicalBatch("p.csv", payments=frame([payment], PAYMENT_SCHEMA)),
                   kind="payments")  # fmt: skip


def _sheet(path: Path) -> tuple[list[str], list[list[object]], list[list[str]]]:
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows())
    header = [str(c.value) for c in rows[0]]
    values = [[c.value for c in row] for row in rows[1:]]
    formats = [[c.number_format for c in row] for row in rows[1:]]
    return header, values, formats


def test_aging_and_customers_xlsx_hold_numbers(db_url: str, tmp_path: Path) -> None:
    _ledger(db_url)
    runner = CliRunner()
    out = tmp_path / "aging.xlsx"
    result = runner.invoke(app, ["--db", db_url, "report", "aging", "--as-of", "2024-04-15",
                                 "--format", "xlsx", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    header, values, formats = _sheet(out)
    row = dict(zip(header, values[0], strict=True))
    fmt = dict(zip(header, formats[0], strict=True))
    balance = next(h for h in header if h.lower().startswith("balance"))
    # The customer code looks like a number but stays text; amounts are numbers.
    assert row[header[0]] == "10023"
    assert row[balance] == 1234667.80  # 1234567.89 + 100.01 - 0.10
    assert isinstance(row[balance], float)
    assert fmt[balance] == "#,##0.00"
    overdue = next(h for h in header if h.lower().startswith("overdue"))
    assert row[overdue] == 1234667.80

    out = tmp_path / "kpis.xlsx"
    result = runner.invoke(app, ["--db", db_url, "report", "kpis", "--as-of", "2024-04-15",
                                 "--format", "xlsx", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    header, values, _formats = _sheet(out)
    numbers = [v for row in values for v in row if isinstance(v, int | float)]
    assert 1234667.80 in numbers
    assert not any(isinstance(v, str) and v.replace(".", "").isdigit() for r in values for v in r)


def test_db_upgrade_hides_the_password(db_url: str) -> None:
    assert display_url("postgresql+psycopg://app:s3cret@db.example:5432/encours") == (
        "postgresql+psycopg://app:***@db.example:5432/encours"
    )
    url = db_url
    if url.startswith("postgresql"):  # the test server trusts loopback: any password works
        url = url.replace("postgres@", "postgres:s3cret@", 1)
    result = CliRunner().invoke(app, ["--db", url, "db", "upgrade"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "up to date" in result.output
    if url.startswith("postgresql"):
        assert "postgres:***@" in result.output
