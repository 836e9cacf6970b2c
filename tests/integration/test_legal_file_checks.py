"""The legal path after the audit: each customer's own letter in its court file, charge
invoices claimed, the file refused before a registered notice's deadline, the request's
mentions (art. 1407 CPC) and competent court, always in French."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.legal import (
    COURT_COMMERCE,
    COURT_JUDICIAIRE,
    build_notice,
    company_nature,
    competent_court,
)
from encours.collections.statement import load_customer, statement_of_account_pdf
from encours.company import load_company
from encours.services.imports import import_file
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication
from encours.store.risk_schema import CustomerProfile
from encours.store.schema import Customer

D = dt.date
runner = CliRunner()
COMMS = Communication.__table__


@pytest.fixture(autouse=True)
def company(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured creditor (documents for real customers need one)."""
    monkeypatch.setenv("ENCOURS_COMPANY_NAME", "Créancier Durand SAS")
    monkeypatch.setenv("ENCOURS_COMPANY_SIREN", "552100554")
    monkeypatch.setenv("ENCOURS_IBAN", "FR7630006000011234567890189")
    monkeypatch.setenv("ENCOURS_COMPANY_ADDRESS", "5 avenue du Port|13002 Marseille")
    monkeypatch.setenv("ENCOURS_COMPANY_LEGAL_FORM", "SAS")
    monkeypatch.setenv("ENCOURS_COMPANY_REPRESENTATIVE", "Claire Durand, présidente")


def write_csv(path: Path, rows: list[dict]) -> Path:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    return path


def seed(db_url: str, tmp: Path, customers: list[dict], invoices: list[dict]) -> dict[str, int]:
    import_file(write_csv(tmp / "c.csv", customers), "customers", db_url=db_url, actor="test")
    import_file(write_csv(tmp / "i.csv", invoices), "invoices", db_url=db_url, actor="test")
    with unit_of_work(db_url) as conn:
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def pay(db_url: str, tmp: Path, pid: str, code: str, day: dt.date, amount: str, number: str):  # noqa: ANN201
    rows = [{"payment_id": pid, "customer_id": code, "date": day.isoformat(), "amount": amount,
             "currency": "EUR", "invoice_number": number}]  # fmt: skip
    import_file(write_csv(tmp / f"{pid}.csv", rows), "payments", db_url=db_url, actor="test")


def customer(code: str, name: str, **extra: str) -> dict:
    return {"customer_id": code, "name": name, "address_line1": f"{code} rue du Test",
            "postal_code": "69001", "city": "Lyon", "country": "FR",
            "contact_email": f"{code.lower()}@example.com", **extra}  # fmt: skip


def invoice(number: str, code: str, due: dt.date, amount: str) -> dict:
    return {"invoice_number": number, "customer_id": code,
            "issue_date": (due - dt.timedelta(days=30)).isoformat(),
            "due_date": due.isoformat(), "amount": amount, "currency": "EUR"}  # fmt: skip


def run(db_url: str, *args: str):  # noqa: ANN201
    return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)


def text_of(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def squash(text: str) -> str:
    return "".join(text.split()).replace("\u202f", "").replace("\xa0", "")


def unzip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def notices(db_url: str) -> dict[int, dict]:
    with unit_of_work(db_url) as conn:
        rows = conn.execute(select(COMMS).where(COMMS.c.level_code == "formal_notice"))
        return {r["customer_id"]: dict(r) for r in rows.mappings()}


# --- 1. the court file holds the customer's own letter, never the print batch -------------

RUN_DAY = D(2025, 3, 31)


def test_dunning_notice_in_the_legal_file_is_the_customers_own_letter(
    db_url: str, tmp_path: Path
) -> None:
    ids = seed(
        db_url, tmp_path,
        [customer("NA", "Alpha Industries SAS"), customer("NB", "Beta Négoce SARL")],
        [invoice("FA-NA-1", "NA", D(2025, 1, 31), "2400.00"),
         invoice("FA-NB-1", "NB", D(2025, 1, 31), "3600.00")],
    )  # fmt: skip
    day = RUN_DAY.isoformat()
    assert run(db_url, "dunning", "run", "--as-of", day).exit_code == 0
    assert run(db_url, "dunning", "approve", "--all", "--as", "credit_manager",
               "--as-of", day).exit_code == 0  # fmt: skip
    out = tmp_path / "print"
    result = run(db_url, "dunning", "send", "--as-of", day, "--out-dir", str(out))
    assert result.exit_code == 0, result.output

    sent = notices(db_url)
    alpha, beta = sent[ids["NA"]], sent[ids["NB"]]
    assert alpha["status"] == beta["status"] == "sent"
    batches = list(out.glob("letters-*.pdf"))
    assert len(batches) == 1  # kept for printing, with both letters
    printed = text_of(batches[0].read_bytes())
    assert "Alpha Industries SAS" in printed and "Beta Négoce SARL" in printed
    assert alpha["document_path"] == str(out / "letters" / f"{alpha['id']}.pdf")
    own = text_of(Path(alpha["document_path"]).read_bytes())
    assert "Alpha Industries SAS" in own and "Beta Négoce" not in own

    # `notice CUSTOMER` on the same day returns the sent letter, still pointing at its own PDF
    result = run(db_url, "notice", "NA", "--as-of", day, "--out", str(tmp_path / "n.pdf"),
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["communication_id"] == alpha["id"]
    assert payload["document_path"] == alpha["document_path"]

    result = run(db_url, "notice", "mark-sent", str(alpha["id"]), "--tracking", "RR-0001")
    assert result.exit_code == 0, result.output
    # a dunning letter gives 8 days from receipt: 8 + 7 days (registered letter) after its day
    early = run(db_url, "legal", "file", "NA", "--as-of", "2025-04-15", "--out", str(tmp_path))
    assert early.exit_code == 1 and "2025-04-15" in early.output
    result = run(db_url, "legal", "file", "NA", "--as-of", "2025-04-16", "--out",
                 str(tmp_path / "legal"))  # fmt: skip
    assert result.exit_code == 0, result.output
    files = unzip(tmp_path / "legal" / "injonction-de-payer-NA-2025-04-16.zip")
    notice = text_of(files["01-mise-en-demeure.pdf"])
    assert files["01-mise-en-demeure.pdf"] == Path(alpha["document_path"]).read_bytes()
    assert "Alpha Industries SAS" in notice and "FA-NA-1" in notice
    assert "Beta Négoce" not in notice and "FA-NB-1" not in notice
    pages = len(PdfReader(io.BytesIO(files["01-mise-en-demeure.pdf"])).pages)
    assert pages < len(PdfReader(batches[0]).pages)


def test_a_notice_recorded_with_the_batch_path_is_never_used(db_url: str, tmp_path: Path) -> None:
    """Rows written before the fix point at the shared batch: `notice` repoints the
    customer's row at its own PDF and the legal file never takes the batch."""
    ids = seed(
        db_url, tmp_path,
        [customer("NA", "Alpha Industries SAS"), customer("NB", "Beta Négoce SARL")],
        [invoice("FA-NA-1", "NA", D(2025, 1, 31), "2400.00"),
         invoice("FA-NB-1", "NB", D(2025, 1, 31), "3600.00")],
    )  # fmt: skip
    day = RUN_DAY.isoformat()
    run(db_url, "dunning", "run", "--as-of", day)
    run(db_url, "dunning", "approve", "--all", "--as", "credit_manager", "--as-of", day)
    assert run(db_url, "dunning", "send", "--as-of", day, "--out-dir",
               str(tmp_path / "print")).exit_code == 0  # fmt: skip
    batch = next((tmp_path / "print").glob("letters-*.pdf"))
    with unit_of_work(db_url) as conn:  # what the old outbox recorded
        conn.execute(update(COMMS).values(document_path=str(batch), tracking_number="RR-1"))
    alpha = notices(db_url)[ids["NA"]]

    result = run(db_url, "legal", "file", "NA", "--as-of", "2025-04-30", "--out",
                 str(tmp_path / "legal"))  # fmt: skip
    assert result.exit_code == 0, result.output
    notice = text_of(unzip(tmp_path / "legal" / "injonction-de-payer-NA-2025-04-30.zip")[
        "01-mise-en-demeure.pdf"])  # fmt: skip
    assert "Alpha Industries SAS" in notice and "Beta Négoce" not in notice

    own = tmp_path / "own.pdf"
    result = run(db_url, "notice", "NA", "--as-of", day, "--out", str(own), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["document_path"] == str(own.resolve())
    assert notices(db_url)[ids["NA"]]["document_path"] == str(own.resolve())
    assert notices(db_url)[ids["NB"]]["document_path"] == str(batch)  # not touched
    assert alpha["status"] == "sent"


# --- 2. unpaid charge invoices are claimed -----------------------------------------------

AS_OF = D(2024, 8, 30)


def test_unpaid_charge_invoice_is_claimed_as_principal(db_url: str, tmp_path: Path) -> None:
    ids = seed(db_url, tmp_path, [customer("C1", "Alpha Industries SAS", siren="732829320")],
               [invoice("FA-0101", "C1", D(2024, 5, 31), "12000.00")])  # fmt: skip
    result = run(db_url, "charges", "invoice", "C1", "--as-of", AS_OF.isoformat(), "--out",
                 str(tmp_path / "pen.pdf"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    charge = json.loads(result.stdout)
    assert charge["number"] == "PEN-2024-0001" and charge["total"] == "468.79"

    with unit_of_work(db_url) as conn:
        notice = build_notice(conn, ids["C1"], AS_OF)
        statement = text_of(statement_of_account_pdf(conn, ids["C1"], AS_OF, "fr"))
    by_number = {line.number: line for line in notice.lines}
    assert set(by_number) == {"FA-0101", "PEN-2024-0001"}
    pen = by_number["PEN-2024-0001"]
    assert pen.charge and pen.open_minor == 468_79 and pen.penalties == 0 and pen.indemnity == 0
    assert by_number["FA-0101"].penalties == 0  # invoiced: not claimed twice
    assert notice.principal_minor == 12_468_79 and str(notice.total) == "12468.79"
    assert "PEN-2024-0001" in statement and "468,79€" in squash(statement)

    result = run(db_url, "notice", "C1", "--as-of", AS_OF.isoformat(), "--out",
                 str(tmp_path / "notice.pdf"), "--json", "--lang", "fr")  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["total"] == "12468.79"
    text = text_of((tmp_path / "notice.pdf").read_bytes())
    assert "PEN-2024-0001" in text and "12468,79€" in squash(text)
    run(db_url, "notice", "mark-sent", str(created["communication_id"]), "--tracking", "RR-7")

    later = D(2024, 9, 30)  # the deadline (2024-09-07) has passed
    result = run(db_url, "legal", "file", "C1", "--as-of", later.isoformat(), "--out",
                 str(tmp_path / "legal"))  # fmt: skip
    assert result.exit_code == 0, result.output
    files = unzip(tmp_path / "legal" / "injonction-de-payer-C1-2024-09-30.zip")
    rows = list(csv.DictReader(io.StringIO(files["factures.csv"].decode()), delimiter=";"))
    # FA-0101: the penalties accrued since the charge invoice (Sept. at 14.25 %) only
    assert [(r["invoice_number"], r["open_amount"], r["penalties"], r["indemnity"])
            for r in rows] == [("FA-0101", "12000.00", "145.23", "0.00"),
                               ("PEN-2024-0001", "468.79", "0.00", "0.00")]  # fmt: skip
    request = squash(text_of(files["05-requete-injonction-de-payer.pdf"]))
    assert "PEN-2024-0001" in request
    assert "12468,79€" in request and "12614,02€" in request  # principal, total
    assert "PEN-2024-0001" in text_of(files["03-factures.pdf"])


# --- 3. no file without a registered notice whose deadline has passed ----------------------


def test_legal_file_needs_a_registered_notice_past_its_deadline(
    db_url: str, tmp_path: Path
) -> None:
    seed(
        db_url, tmp_path, [customer("C1", "Alpha Industries SAS", siren="732829320")],
        [invoice("FA-1", "C1", D(2024, 7, 15), "1000.00"),
         invoice("FA-2", "C1", D(2024, 7, 31), "2000.00"),
         invoice("FA-3", "C1", D(2024, 8, 26), "500.00")],  # 4 days overdue on the notice's day
    )  # fmt: skip
    legal = ["legal", "file", "C1", "--out", str(tmp_path / "legal")]
    result = run(db_url, *legal, "--as-of", "2024-08-30")
    assert result.exit_code == 1 and "no formal notice was sent" in result.output
    assert not (tmp_path / "legal").exists()

    result = run(db_url, "notice", "C1", "--as-of", "2024-08-22", "--out",
                 str(tmp_path / "notice.pdf"), "--json")  # fmt: skip
    notice_id = json.loads(result.stdout)["communication_id"]
    result = run(db_url, *legal, "--as-of", "2024-09-10")
    assert result.exit_code == 1 and f"formal notice {notice_id} is draft" in result.output

    assert run(db_url, "notice", "mark-sent", str(notice_id), "--tracking",
               "RR-42").exit_code == 0  # fmt: skip
    result = run(db_url, *legal, "--as-of", "2024-08-30")  # deadline 2024-08-30: not passed
    assert result.exit_code == 1 and "2024-08-30" in result.output
    assert "has not passed" in result.output

    result = run(db_url, *legal, "--as-of", "2024-08-30", "--force")
    assert result.exit_code == 0, result.output
    assert "--force" in result.output
    files = unzip(tmp_path / "legal" / "injonction-de-payer-C1-2024-08-30.zip")
    request = text_of(files["05-requete-injonction-de-payer.pdf"])
    assert "--force" in request and "30/08/2024" in request and "RR-42" in request

    pay(db_url, tmp_path, "P1", "C1", D(2024, 9, 2), "1000.00", "FA-1")
    result = run(db_url, *legal, "--as-of", "2024-09-10")
    assert result.exit_code == 0, result.output
    files = unzip(tmp_path / "legal" / "injonction-de-payer-C1-2024-09-10.zip")
    rows = list(csv.DictReader(io.StringIO(files["factures.csv"].decode()), delimiter=";"))
    # FA-1 paid since, FA-3 not overdue on the notice's day (not listed in it)
    assert [r["invoice_number"] for r in rows] == ["FA-2"]
    request = text_of(files["05-requete-injonction-de-payer.pdf"])
    assert "FA-2" in request and "FA-1" not in request and "FA-3" not in request
    assert "--force" not in request

    pay(db_url, tmp_path, "P2", "C1", D(2024, 9, 5), "2000.00", "FA-2")
    result = run(db_url, *legal, "--as-of", "2024-09-10")
    assert result.exit_code == 1 and "still unpaid" in result.output


# --- 4. the request's mentions, the competent court, always in French ---------------------


def test_request_mentions_parties_and_court_in_french(db_url: str, tmp_path: Path) -> None:
    ids = seed(
        db_url, tmp_path,
        [customer("C1", "Alpha Industries", siren="732829320"),
         customer("C2", "Jean Dupont", is_consumer="true"),
         customer("C3", "SCI Les Tilleuls")],
        [invoice("FA-1", "C1", D(2024, 7, 15), "1000.00"),
         invoice("FA-2", "C2", D(2024, 7, 15), "300.00"),
         invoice("FA-3", "C3", D(2024, 7, 15), "800.00")],
    )  # fmt: skip
    with unit_of_work(db_url) as conn:  # the legal form comes from the customer profile
        conn.execute(insert(CustomerProfile.__table__).values(customer_id=ids["C1"],
                                                              legal_form="SARL"))  # fmt: skip
    out = tmp_path / "legal"
    requests = {}
    for code in ("C1", "C2", "C3"):
        result = run(db_url, "legal", "file", code, "--as-of", "2024-08-30", "--out", str(out),
                     "--lang", "en", "--force")  # fmt: skip
        assert result.exit_code == 0, result.output
        files = unzip(out / f"injonction-de-payer-{code}-2024-08-30.zip")
        requests[code] = text_of(files["05-requete-injonction-de-payer.pdf"])
        # a French court: French documents whatever --lang
        assert "Relevé de compte" in text_of(files["02-releve-de-compte.pdf"])
        assert "Calcul des pénalités" in text_of(files["04-calcul-penalites.pdf"])

    alpha = requests["C1"]
    assert "Requête en injonction de payer" in alpha
    assert "Créancier Durand SAS" in alpha and "Claire Durand, présidente" in alpha
    assert "Forme juridique" in alpha and "SARL" in alpha
    assert "Siège social" in alpha and "5 avenue du Port" in alpha and "C1 rue du Test" in alpha
    assert "Représentant légal" in alpha and "1407" in alpha
    assert "tribunal de commerce" in alpha and "tribunal judiciaire" not in alpha
    consumer = requests["C2"]
    assert "tribunal judiciaire" in consumer and "consommateur" in consumer
    assert "Domicile" in consumer
    sci = requests["C3"]
    assert "tribunal judiciaire" in sci and "société civile" in sci


def test_competent_court_rule() -> None:
    company = load_company({"ENCOURS_COMPANY_NAME": "Créancier", "ENCOURS_COMPANY_LEGAL_FORM":
                            "SAS"})  # fmt: skip
    civil_creditor = load_company({"ENCOURS_COMPANY_NAME": "Cabinet Martin",
                                   "ENCOURS_COMPANY_LEGAL_FORM": "SELARL"})  # fmt: skip

    def debtor(name: str, consumer: bool = False):  # noqa: ANN202
        from encours.collections.statement import CustomerInfo

        return CustomerInfo(id=1, code="X", name=name, siren=None, vat_number=None,
                            country="FR", currency="EUR", penalty_rate=None,
                            is_consumer=consumer, in_insolvency=False)  # fmt: skip

    assert competent_court(debtor("Alpha SAS"), None, company)[0] == COURT_COMMERCE
    assert competent_court(debtor("Alpha"), "S.A.R.L.", company)[0] == COURT_COMMERCE
    assert competent_court(debtor("Jean Dupont", True), None, company)[0] == COURT_JUDICIAIRE
    assert competent_court(debtor("SCI du Parc"), None, company)[0] == COURT_JUDICIAIRE
    assert competent_court(debtor("Les Amis"), "Association loi 1901", company)[0] == (
        COURT_JUDICIAIRE)  # fmt: skip
    assert competent_court(debtor("Dr Martin"), "SELARL", company)[0] == COURT_JUDICIAIRE
    assert competent_court(debtor("Alpha SAS"), None, civil_creditor)[0] == COURT_JUDICIAIRE
    assert competent_court(debtor("Alpha"), None, company)[0] is None  # unknown: to check
    assert company_nature("Société civile immobilière") == "civil"
    assert company_nature(None, "Beta Négoce SARL") == "commercial"


def test_legal_export_keeps_the_language(db_url: str, tmp_path: Path) -> None:
    """Customer-facing / third-party documents keep --lang (only the court file is French)."""
    ids = seed(db_url, tmp_path, [customer("C1", "Alpha Industries SAS")],
               [invoice("FA-1", "C1", D(2024, 7, 15), "1000.00")])  # fmt: skip
    result = run(db_url, "legal", "export", "C1", "--kind", "agency", "--as-of", "2024-08-30",
                 "--out", str(tmp_path), "--lang", "en")  # fmt: skip
    assert result.exit_code == 0, result.output
    files = unzip(tmp_path / "agency-C1-2024-08-30.zip")
    assert "Statement of account" in text_of(files["statement.pdf"])
    with unit_of_work(db_url) as conn:
        assert load_customer(conn, ids["C1"]).name == "Alpha Industries SAS"
