"""The injonction de payer file and the agency / insurer export: ZIPs of real PDFs and CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.legal import build_notice
from encours.collections.pdf import DocumentError
from encours.imports.canonical import CUSTOMER_SCHEMA, DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.store.db import unit_of_work
from encours.store.schema import Customer

D = dt.date
runner = CliRunner()


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def seed(url: str) -> dict[str, int]:
    customers = [
        {"customer_id": "C1", "name": "Alpha Industries SAS", "siren": "732829320",
         "country": "FR", "contact_email": "compta@alpha.example"},
        {"customer_id": "C2", "name": "Jean Dupont", "is_consumer": True},
        {"customer_id": "C3", "name": "Paid Up SA"},
    ]  # fmt: skip
    docs = [
        {"invoice_number": "FA-0101", "customer_id": "C1", "issue_date": D(2024, 5, 1),
         "due_date": D(2024, 5, 31), "amount_minor": 12_000_00, "currency": "EUR"},
        {"invoice_number": "FA-0102", "customer_id": "C1", "issue_date": D(2024, 6, 1),
         "due_date": D(2024, 7, 1), "amount_minor": 2_500_00, "currency": "EUR",
         "disputed": True},
        {"invoice_number": "FA-0201", "customer_id": "C2", "issue_date": D(2024, 6, 1),
         "due_date": D(2024, 7, 1), "amount_minor": 500_00, "currency": "EUR"},
        {"invoice_number": "FA-0301", "customer_id": "C3", "issue_date": D(2024, 8, 1),
         "due_date": D(2024, 9, 30), "amount_minor": 100_00, "currency": "EUR"},
    ]  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("c.csv", customers=_frame(customers, CUSTOMER_SCHEMA)),
                   kind="customers")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=_frame(docs, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def run(db_url: str, *args: str):  # noqa: ANN201
    return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)


def text_of(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def squash(text: str) -> str:
    return "".join(text.split()).replace("\u202f", "").replace("\xa0", "")


def test_injonction_de_payer_file(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    notice_pdf = tmp_path / "notice.pdf"
    result = run(db_url, "notice", "C1", "--as-of", "2024-08-30", "--out", str(notice_pdf),
                 "--lang", "fr")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert run(db_url, "notice", "mark-sent", "1", "--tracking", "RR-998877").exit_code == 0

    # --force: the notice's deadline (2024-09-07) has not passed (see test_legal_file_checks)
    result = run(db_url, "legal", "file", "C1", "--as-of", "2024-08-30", "--out",
                 str(tmp_path / "legal"), "--lang", "fr", "--force")  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "legal" / "injonction-de-payer-C1-2024-08-30.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        files = {name: zf.read(name) for name in names}
    assert names == ["01-mise-en-demeure.pdf", "02-releve-de-compte.pdf", "03-factures.pdf",
                     "04-calcul-penalites.pdf", "05-requete-injonction-de-payer.pdf",
                     "factures.csv"]  # fmt: skip
    assert files["01-mise-en-demeure.pdf"] == notice_pdf.read_bytes()  # the one sent
    notice = text_of(files["01-mise-en-demeure.pdf"])
    assert "Mise en demeure" in notice and "FA-0101" in notice
    assert "FA-0102" not in notice  # disputed: not claimed
    statement = text_of(files["02-releve-de-compte.pdf"])
    assert "Relevé de compte" in statement and "FA-0102" in statement  # listed, as disputed
    invoices = text_of(files["03-factures.pdf"])
    assert "FA-0101" in invoices and "31/05/2024" in invoices
    assert "12000,00€" in squash(invoices)
    computation = text_of(files["04-calcul-penalites.pdf"])
    flat = squash(computation)
    assert "14.50" in computation and "14.25" in computation  # 2024 H1 and H2 rates
    assert "143,01€" in flat and "285,78€" in flat and "428,79€" in flat  # the worked example
    request = text_of(files["05-requete-injonction-de-payer.pdf"])
    assert "injonction de payer" in request and "Alpha Industries SAS" in request
    assert "RR-998877" in request and "732829320" in request
    assert "12468,79€" in squash(request)  # 12 000.00 + 428.79 + 40.00
    rows = list(csv.DictReader(io.StringIO(files["factures.csv"].decode()), delimiter=";"))
    assert [(r["invoice_number"], r["penalties"], r["indemnity"]) for r in rows] == [
        ("FA-0101", "428.79", "40.00")]  # fmt: skip


@pytest.mark.parametrize("kind", ["agency", "insurer"])
def test_export_for_agency_or_insurer(db_url: str, tmp_path: Path, kind: str) -> None:
    seed(db_url)
    result = run(db_url, "legal", "export", "C1", "--kind", kind, "--as-of", "2024-08-30",
                 "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / f"{kind}-C1-2024-08-30.zip") as zf:
        assert sorted(zf.namelist()) == ["debtor.csv", "formal-notice.pdf", "invoices.csv",
                                         "statement.pdf"]  # fmt: skip
        debtor = next(csv.DictReader(io.StringIO(zf.read("debtor.csv").decode()), delimiter=";"))
        assert "Statement of account" in text_of(zf.read("statement.pdf"))
    assert debtor["kind"] == kind and debtor["siren"] == "732829320"
    assert (debtor["principal"], debtor["penalties"], debtor["indemnities"], debtor["total"]) == (
        "12000.00", "428.79", "40.00", "12468.79")  # fmt: skip
    assert debtor["oldest_due_date"] == "2024-05-31" and debtor["formal_notice_date"] == ""


def test_consumer_owes_no_indemnity_and_nothing_overdue_is_refused(db_url: str) -> None:
    ids = seed(db_url)
    with unit_of_work(db_url) as conn:
        notice = build_notice(conn, ids["C2"], D(2024, 8, 30))
        assert notice.reason == "consumer"
        assert notice.penalties == 0 and notice.indemnities == 0 and notice.total == 500
        with pytest.raises(DocumentError):
            build_notice(conn, ids["C3"], D(2024, 8, 30))
    assert run(db_url, "legal", "file", "C3", "--out", "/tmp/x", "--as-of",
               "2024-08-30").exit_code == 1  # fmt: skip
    assert run(db_url, "legal", "export", "C1", "--kind", "bank", "--out", "/tmp/x").exit_code == 2
