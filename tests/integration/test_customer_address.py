"""The customer's postal address end to end: import (idempotent, audited), the documents
that print it (formal notice, statement, injonction de payer file, dunning letters), the
agency export and onboarding."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from encours.collections.actions import create_plan
from encours.collections.legal import build_notice, legal_export, legal_file, notice_pdf
from encours.collections.statement import (
    load_customer,
    payment_plan_letter_pdf,
    statement_of_account_pdf,
)
from encours.collections.templates import Renderer
from encours.risk.onboarding import OnboardingError, onboard_customer
from encours.services.imports import import_file
from encours.store.db import unit_of_work
from encours.store.schema import AuditEntry, Customer

D = dt.date
AS_OF = D(2024, 8, 30)
CUSTOMERS_HEADER = "customer_id;name;siren;address_line1;address_line2;postal_code;city;country"
ALPHA = "C1;Alpha Industries SAS;732829320;12 rue des Lilas;ZI des Tilleuls;01000;Bourg-en-Bresse"
ALPHA += ";FR"
BETA = "C2;Beta Services SARL;;;;;;FR"  # no address at all
INVOICES = (
    "invoice_number;customer_id;issue_date;due_date;amount;currency\n"
    "FA-0101;C1;2024-05-01;2024-05-31;12000.00;EUR\n"
    "FA-0201;C2;2024-05-01;2024-05-31;800.00;EUR\n"
)


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _import_customers(db_url: str, tmp: Path, *lines: str) -> dict:
    path = _write(tmp, "customers.csv", "\n".join([CUSTOMERS_HEADER, *lines]) + "\n")
    report = import_file(path, "customers", db_url=db_url, actor="test")
    return report.as_dict() if hasattr(report, "as_dict") else vars(report)


def _customer(db_url: str, code: str) -> dict:
    table = Customer.__table__
    with unit_of_work(db_url) as conn:
        return dict(conn.execute(select(table).where(table.c.code == code)).mappings().one())


def _audit(db_url: str, code: str) -> list[dict]:
    table = AuditEntry.__table__
    with unit_of_work(db_url) as conn:
        rows = conn.execute(
            select(table)
            .where(table.c.entity == "customer", table.c.entity_key == code)
            .order_by(table.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def _seed(db_url: str, tmp: Path) -> dict[str, int]:
    _import_customers(db_url, tmp, ALPHA, BETA)
    import_file(_write(tmp, "invoices.csv", INVOICES), "invoices", db_url=db_url, actor="test")
    with unit_of_work(db_url) as conn:
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# -- import ------------------------------------------------------------------------------


def test_import_keeps_the_address_and_reimport_is_idempotent(db_url: str, tmp_path: Path):
    _import_customers(db_url, tmp_path, ALPHA, BETA)
    row = _customer(db_url, "C1")
    assert (row["address_line1"], row["address_line2"], row["postal_code"], row["city"]) == (
        "12 rue des Lilas", "ZI des Tilleuls", "01000", "Bourg-en-Bresse")  # fmt: skip
    beta = _customer(db_url, "C2")
    assert [beta[k] for k in ("address_line1", "address_line2", "postal_code", "city")] == [
        None] * 4  # fmt: skip
    audit_before = _audit(db_url, "C1")
    updated_at = row["updated_at"]

    # the same file again: nothing changes, nothing audited
    _import_customers(db_url, tmp_path, ALPHA, BETA)
    assert _audit(db_url, "C1") == audit_before
    assert _customer(db_url, "C1")["updated_at"] == updated_at

    # a new city: one update, audited with the old and the new value only
    moved = ALPHA.replace("01000;Bourg-en-Bresse", "01100;Oyonnax")
    _import_customers(db_url, tmp_path, moved, BETA)
    row = _customer(db_url, "C1")
    assert (row["postal_code"], row["city"]) == ("01100", "Oyonnax")
    entries = _audit(db_url, "C1")[len(audit_before) :]
    assert len(entries) == 1 and entries[0]["action"] == "update"
    assert entries[0]["before"] == {"postal_code": "01000", "city": "Bourg-en-Bresse"}
    assert entries[0]["after"] == {"postal_code": "01100", "city": "Oyonnax"}
    assert _audit(db_url, "C2") == []  # the unchanged customer is untouched


def test_a_file_without_a_column_leaves_that_column_alone(db_url: str, tmp_path: Path):
    """A customers file without the address (or currency, terms...) columns updates what
    it gives and erases nothing else; an empty cell of a given column does clear it."""
    _import_customers(db_url, tmp_path, ALPHA, BETA)
    before = _customer(db_url, "C1")
    names_only = _write(tmp_path, "names.csv", "customer_id,name\nC1,Alpha Industries SA\n")
    report = import_file(names_only, "customers", db_url=db_url, actor="test")
    assert (report.updated, report.unchanged) == (1, 0)
    after = _customer(db_url, "C1")
    assert after["name"] == "Alpha Industries SA"
    for key in (
        "siren",
        "address_line1",
        "address_line2",
        "postal_code",
        "city",
        "country",
        "currency",
        "payment_terms",
    ):
        assert after[key] == before[key], key
    assert _audit(db_url, "C1")[-1]["before"] == {"name": before["name"]}
    cleared = _write(tmp_path, "cleared.csv", "customer_id,name,city\nC1,Alpha Industries SA,\n")
    import_file(cleared, "customers", db_url=db_url, actor="test")
    assert _customer(db_url, "C1")["city"] is None
    assert _customer(db_url, "C1")["postal_code"] == "01000"


# -- documents ---------------------------------------------------------------------------


def test_formal_notice_pdf_prints_the_address(db_url: str, tmp_path: Path) -> None:
    ids = _seed(db_url, tmp_path)
    with unit_of_work(db_url) as conn:
        info = load_customer(conn, ids["C1"])
        assert info.address_lines == ["Alpha Industries SAS", "12 rue des Lilas",
                                      "ZI des Tilleuls", "01000 Bourg-en-Bresse"]  # fmt: skip
        notice = build_notice(conn, ids["C1"], AS_OF)
        bare = build_notice(conn, ids["C2"], AS_OF)
        statement = statement_of_account_pdf(conn, ids["C1"], AS_OF, "fr")
    for lang in ("fr", "en"):
        text = _text(notice_pdf(notice, lang))
        assert "12 rue des Lilas" in text and "ZI des Tilleuls" in text
        assert "01000 Bourg-en-Bresse" in text
    assert "01000 Bourg-en-Bresse" in _text(statement)
    # no address: the block keeps the name and country, and never prints "None"
    text = _text(notice_pdf(bare, "fr"))
    assert "Beta Services SARL" in text and "None" not in text


def test_legal_file_and_export_carry_the_address(db_url: str, tmp_path: Path) -> None:
    ids = _seed(db_url, tmp_path)
    with unit_of_work(db_url) as conn:
        # force: no formal notice was sent (the checks: test_legal_file_checks.py)
        path = legal_file(conn, ids["C1"], AS_OF, tmp_path, "fr", force=True)
        export = legal_export(conn, ids["C1"], AS_OF, "agency", tmp_path, "en")
        bare = legal_file(conn, ids["C2"], AS_OF, tmp_path / "bare", "fr", force=True)
    with zipfile.ZipFile(path) as zf:
        summary = _text(zf.read("05-requete-injonction-de-payer.pdf"))
        assert "12 rue des Lilas" in summary and "01000 Bourg-en-Bresse" in summary
        assert "01000 Bourg-en-Bresse" in _text(zf.read("02-releve-de-compte.pdf"))
    with zipfile.ZipFile(bare) as zf:
        assert "None" not in _text(zf.read("05-requete-injonction-de-payer.pdf"))
    with zipfile.ZipFile(export) as zf:
        debtor = next(csv.DictReader(io.StringIO(zf.read("debtor.csv").decode()), delimiter=";"))
    assert (debtor["address_line1"], debtor["postal_code"], debtor["city"]) == (
        "12 rue des Lilas", "01000", "Bourg-en-Bresse")  # fmt: skip


def test_payment_plan_proposal_letter_prints_the_address(db_url: str, tmp_path: Path) -> None:
    _seed(db_url, tmp_path)
    with unit_of_work(db_url) as conn:
        plan_id = create_plan(conn, "C1", [(D(2024, 9, 30), "6000.00"), (D(2024, 10, 31), "6000")],
                              AS_OF, "test")  # fmt: skip
        texts = {lang: _text(payment_plan_letter_pdf(conn, plan_id, AS_OF, lang))
                 for lang in ("fr", "en")}  # fmt: skip
    for text in texts.values():
        assert "12 rue des Lilas" in text and "01000 Bourg-en-Bresse" in text
        assert f"PLAN-{plan_id}" in text and "None" not in text
    assert "échéancier" in texts["fr"] and "Payment plan proposal" in texts["en"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_formal_notice_letter_template_prints_the_address(lang: str) -> None:
    from encours.web.pages.settings import sample_context

    renderer = Renderer()
    context = sample_context(AS_OF)
    plain = renderer.render("formal_notice", "letter", lang, context)
    assert "None" not in plain.body_text and "None" not in plain.body_html
    context["customer"] = {**context["customer"], "address_line1": "12 rue des Lilas",
                           "address_line2": None, "postal_code": "01000",
                           "city": "Bourg-en-Bresse"}  # fmt: skip
    rendered = renderer.render("formal_notice", "letter", lang, context)
    assert "\n12 rue des Lilas\n01000 Bourg-en-Bresse\n" in rendered.body_text
    assert "<br>12 rue des Lilas<br>01000 Bourg-en-Bresse</p>" in rendered.body_html
    assert "None" not in rendered.body_text


def test_foreign_address_ends_with_the_country() -> None:
    from encours.collections.statement import CustomerInfo

    info = CustomerInfo(1, "C9", "Müller Logistik GmbH", None, None, "DE", "EUR", None, False,
                        False, contact_name="Anja Weber", address_line1="Hauptstraße 12",
                        postal_code="10115", city="Berlin")  # fmt: skip
    assert info.address_lines == ["Müller Logistik GmbH", "Anja Weber", "Hauptstraße 12",
                                  "10115 Berlin", "DE"]  # fmt: skip


# -- onboarding --------------------------------------------------------------------------


def test_onboarding_stores_the_address(db_url: str) -> None:
    with unit_of_work(db_url) as conn:
        onboard_customer(
            conn, "ONB-A", "Nouvelle Mécanique SAS", siren="732829320", country="FR",
            address_line1=" 3 avenue Jean Jaurès ", address_line2="", postal_code="69003",
            city="Lyon", checklist=["contract", "payment_terms", "penalty_clause"],
            as_of=AS_OF, actor="test",
        )  # fmt: skip
    row = _customer(db_url, "ONB-A")
    assert (row["address_line1"], row["address_line2"], row["postal_code"], row["city"]) == (
        "3 avenue Jean Jaurès", None, "69003", "Lyon")  # fmt: skip
    created = _audit(db_url, "ONB-A")[0]
    assert created["action"] == "create" and created["after"]["city"] == "Lyon"
    with pytest.raises(OnboardingError) as exc, unit_of_work(db_url) as conn:
        onboard_customer(conn, "ONB-B", "Mauvais Code SARL", postal_code="6903", city="Lyon",
                         as_of=AS_OF)  # fmt: skip
    assert "6903" in str(exc.value)


def test_dunning_run_letters_print_the_address(db_url: str, tmp_path: Path) -> None:
    """The messages of a dunning run (here the formal notice, D+91) carry the address."""
    from encours.collections.engine import run_dunning
    from encours.store.outbox_schema import Communication

    ids = _seed(db_url, tmp_path)
    with unit_of_work(db_url) as conn:
        run_dunning(conn, AS_OF, actor="test")
    table = Communication.__table__
    with unit_of_work(db_url) as conn:
        rows = conn.execute(
            select(table.c.customer_id, table.c.level_code, table.c.body_text)
        ).all()
    by_customer = {cid: (level, body) for cid, level, body in rows}
    level, body = by_customer[ids["C1"]]
    assert level == "formal_notice"
    assert "12 rue des Lilas\nZI des Tilleuls\n01000 Bourg-en-Bresse" in body
    assert "None" not in by_customer[ids["C2"]][1]
