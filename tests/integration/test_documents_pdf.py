"""Documents as real PDFs read back with pypdf: statement of account, formal notice and
the penalty charge invoice (Factur-X), through the API and the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import facturx
import polars as pl
import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.charges import charge_invoice, waive_penalties
from encours.collections.pdf import DocumentError
from encours.collections.statement import build_statement, statement_of_account_pdf
from encours.imports.canonical import (
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
    conform,
)
from encours.imports.load import load_batch
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication, TimelineEvent
from encours.store.schema import AuditEntry, Customer, Document

D = dt.date
AS_OF = D(2024, 8, 30)
runner = CliRunner()


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def _inv(number: str, customer: str, issue: dt.date, due: dt.date, amount: int, **extra) -> dict:  # noqa: ANN003
    return {"invoice_number": number, "customer_id": customer, "issue_date": issue,
            "due_date": due, "amount_minor": amount, "currency": "EUR", **extra}  # fmt: skip


def seed(url: str) -> dict[str, int]:
    """C1: the worked example (12 000.00 due 2024-05-31, unpaid), a partly paid invoice,
    one not due yet, a credit note and unapplied cash. C2: a consumer."""
    customers = [
        {"customer_id": "C1", "name": "Alpha Industries SAS", "country": "FR",
         "siren": "732829320", "contact_name": "Jeanne Martin"},
        {"customer_id": "C2", "name": "Jean Dupont", "country": "FR", "is_consumer": True},
    ]  # fmt: skip
    docs = [
        _inv("FA-2024-0101", "C1", D(2024, 5, 1), D(2024, 5, 31), 12_000_00),
        _inv("FA-2024-0102", "C1", D(2024, 6, 15), D(2024, 7, 15), 3_456_78),
        _inv("FA-2024-0103", "C1", D(2024, 8, 1), D(2024, 9, 30), 999_99),
        _inv("AV-2024-0001", "C1", D(2024, 7, 20), D(2024, 7, 20), 100_00,
             document_type="credit_note"),
        _inv("FA-2024-0201", "C2", D(2024, 6, 1), D(2024, 7, 1), 500_00),
    ]  # fmt: skip
    payments = [
        {"payment_id": "P1", "customer_id": "C1", "date": D(2024, 8, 10), "amount_minor": 456_78,
         "currency": "EUR", "invoice_number": "FA-2024-0102"},
        {"payment_id": "P2", "customer_id": "C1", "date": D(2024, 8, 20), "amount_minor": 50_00,
         "currency": "EUR"},
    ]  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("c.csv", customers=_frame(customers, CUSTOMER_SCHEMA)),
                   kind="customers")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=_frame(docs, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("p.csv", payments=_frame(payments, PAYMENT_SCHEMA)),
                   kind="payments", unapplied="keep")  # fmt: skip
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def pdf_text(data: bytes | Path) -> str:
    reader = PdfReader(io.BytesIO(data) if isinstance(data, bytes) else data)
    return "\n".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    return "".join(text.split()).replace("\u202f", "").replace("\xa0", "")


def run(db_url: str, *args: str):  # noqa: ANN201
    return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)


def test_statement_of_account_lists_open_items_netted_and_aged(db_url: str) -> None:
    ids = seed(db_url)
    with unit_of_work(db_url) as conn:
        statement = build_statement(conn, ids["C1"], AS_OF)
        pdf_fr = statement_of_account_pdf(conn, ids["C1"], AS_OF, "fr")
    assert [i["number"] for i in statement.invoices] == ["FA-2024-0101", "FA-2024-0102",
                                                         "FA-2024-0103"]  # fmt: skip
    assert statement.invoices_open_minor == 15_999_99
    assert (statement.unapplied_credit_minor, statement.unapplied_cash_minor) == (100_00, 50_00)
    assert statement.balance_minor == 15_849_99 and statement.overdue_minor == 15_000_00
    aging = {a.label: a.amount_minor for a in statement.aging}
    assert aging == {"not_due": 999_99, "1-30": 0, "31-60": 3_000_00, "61-90": 0,
                     "91-120": 12_000_00, "121+": 0}  # fmt: skip
    assert sum(aging.values()) == statement.invoices_open_minor

    text = pdf_text(pdf_fr)
    flat = squash(text)
    assert "Relevé de compte" in text and "Alpha Industries SAS" in text
    for number in ("FA-2024-0101", "FA-2024-0102", "FA-2024-0103"):
        assert number in text
    assert "15849,99€" in flat and "3000,00€" in flat and "Avoirsnonimputés-100,00€" in flat


def test_statement_cli_in_english(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    out = tmp_path / "statement.pdf"
    result = run(db_url, "statement", "C1", "--as-of", "2024-08-30", "--out", str(out),
                 "--lang", "en")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = pdf_text(out)
    assert "Statement of account" in text and "€15,849.99" in squash(text)
    assert run(db_url, "statement", "NOPE", "--out", str(out)).exit_code == 1


def test_formal_notice_pdf_then_marked_sent_by_registered_letter(
    db_url: str, tmp_path: Path
) -> None:
    ids = seed(db_url)
    out = tmp_path / "notice.pdf"
    result = run(db_url, "notice", "C1", "--as-of", "2024-08-30", "--deadline-days", "8",
                 "--out", str(out), "--lang", "fr", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # principal 15 000.00 + penalties (428.79 worked example + 58.51) + 2 x 40.00
    assert payload["total"] == "15567.30" and payload["deadline"] == "2024-09-07"
    text = pdf_text(out)
    flat = squash(text)
    assert "Mise en demeure" in text and "Alpha Industries SAS" in text
    assert "FA-2024-0101" in text and "FA-2024-0102" in text
    assert "FA-2024-0103" not in text  # not due yet
    assert "428,79€" in flat and "15567,30€" in flat and "80,00€" in flat
    assert "07/09/2024" in text
    assert "1344" in text and "L441-10" in text and "40 €" in text

    communication_id = payload["communication_id"]
    with unit_of_work(db_url) as conn:
        row = conn.execute(select(Communication).where(Communication.id == communication_id)
                           ).mappings().one()  # fmt: skip
    assert row["status"] == "draft" and row["channel"] == "letter"
    assert row["penalties_minor"] == 487_30 and row["indemnities_minor"] == 80_00
    assert Path(row["document_path"]) == out.resolve()

    result = run(db_url, "notice", "mark-sent", str(communication_id), "--tracking",
                 "1A12345678901")  # fmt: skip
    assert result.exit_code == 0, result.output
    with unit_of_work(db_url) as conn:
        row = conn.execute(select(Communication).where(Communication.id == communication_id)
                           ).mappings().one()  # fmt: skip
        audit = conn.execute(select(AuditEntry.after).where(
            AuditEntry.action == "communication.registered")).scalar_one()  # fmt: skip
        event = conn.execute(select(TimelineEvent.summary).where(
            TimelineEvent.ref_id == communication_id)).scalar_one()  # fmt: skip
    assert row["status"] == "sent" and row["tracking_number"] == "1A12345678901"
    assert audit["tracking_number"] == "1A12345678901" and "1A12345678901" in event
    assert ids  # C2 (consumer) owes no indemnity: checked in test_legal_file


def test_charge_invoice_is_factur_x_and_is_not_claimed_twice(db_url: str, tmp_path: Path) -> None:
    ids = seed(db_url)
    out = tmp_path / "PEN.pdf"
    result = run(db_url, "charges", "invoice", "C1", "--as-of", "2024-08-30", "--out", str(out),
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["number"] == "PEN-2024-0001"
    assert (payload["penalties"], payload["indemnities"], payload["total"]) == (
        "487.30", "80.00", "567.30")  # fmt: skip

    data = out.read_bytes()
    text = pdf_text(data)
    assert "PEN-2024-0001" in text and "FA-2024-0101" in text and "€567.30" in squash(text)
    xml_name, xml = facturx.get_xml_from_pdf(data, check_xsd=True)
    assert xml_name == "factur-x.xml"
    tree = etree.fromstring(xml)
    ns = {
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    }
    assert tree.findtext(".//ram:GrandTotalAmount", namespaces=ns) == "567.30"
    assert tree.findtext(".//ram:TaxTotalAmount", namespaces=ns) == "0.00"
    assert tree.findtext(".//ram:CategoryCode", namespaces=ns) == "O"
    assert facturx.get_level(tree) == "basicwl"

    with unit_of_work(db_url) as conn:
        doc = conn.execute(select(Document).where(Document.number == "PEN-2024-0001")
                           ).mappings().one()  # fmt: skip
        assert doc["kind"] == "invoice" and doc["amount_minor"] == 567_30
        assert doc["customer_id"] == ids["C1"]
        # The same day again: nothing left to invoice.
        with pytest.raises(DocumentError):
            charge_invoice(conn, ids["C1"], AS_OF)
        # A month later only the penalties accrued since are invoiced, under the next number.
        later = charge_invoice(conn, ids["C1"], D(2024, 9, 30), language="en")
    assert later.number == "PEN-2024-0002"
    assert later.indemnities == 0 and 0 < later.penalties < 200


def test_waived_penalties_are_not_invoiced(db_url: str, tmp_path: Path) -> None:
    ids = seed(db_url)
    result = run(db_url, "charges", "waive", "C1", "--reason", "commercial gesture",
                 "--as-of", "2024-08-30", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["penalties"] == 487_30
    with unit_of_work(db_url) as conn:
        with pytest.raises(DocumentError):
            charge_invoice(conn, ids["C1"], AS_OF)
        with pytest.raises(DocumentError):
            waive_penalties(conn, ids["C1"], "  ", "tester")
        actions = conn.execute(select(AuditEntry.action, AuditEntry.after)).all()
    waived = [after for action, after in actions if action == "penalties.waived"]
    assert waived[0]["reason"] == "commercial gesture"
