"""What a dunning run claims over a real database (SQLite, and PostgreSQL when configured):
penalties net of what was invoiced or waived, charge invoices bearing none, customers in
insolvency proceedings left out, the formal notice's legal mentions and deadline, the
"previous reminders" wording, warnings, and `dunning send`'s report."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update
from test_dunning_run import AS_OF, due, write_csv
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.charges import charge_invoice, waive_penalties
from encours.collections.engine import SKIP_INSOLVENCY, run_dunning
from encours.domain.penalties import RateTable, compute_penalties
from encours.locale_format import format_day
from encours.money import to_minor
from encours.services.imports import import_file
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication
from encours.store.rates import load_rate_table, shipped_rates
from encours.store.schema import Customer

runner = CliRunner()


def customer(code: str, lang: str = "fr", email: str | None = None) -> dict:
    return {"customer_id": code, "name": f"Société {code}", "segment": "late",
            "collector": "Marie Martin", "contact_name": f"Contact {code}",
            "contact_email": email if email is not None else f"{code.lower()}@example.com",
            "contact_language": lang, "is_consumer": "false"}  # fmt: skip


def invoice(number: str, code: str, rel_days: int, amount: str) -> dict:
    issue = (AS_OF - dt.timedelta(days=rel_days + 30)).isoformat()
    return {"invoice_number": number, "customer_id": code, "issue_date": issue,
            "due_date": due(rel_days), "amount": amount, "currency": "EUR",
            "disputed": "false", "document_type": "invoice"}  # fmt: skip


CUSTOMERS = [
    customer("CW"),  # waived
    customer("CP"),  # penalties invoiced on a charge invoice
    customer("CN"),  # first message: the formal notice
    customer("CE", "en"),  # the same in English
    customer("CX"),  # insolvency proceedings
    customer("CR"),  # a reminder sent, then the final reminder
    customer("CF"),  # first message: the final reminder
    customer("CM", email=""),  # no email address: delivery fails
]
INVOICES = [
    invoice("FW1", "CW", 31, "5000.00"),  # final reminder: penalties + indemnity
    invoice("FP1", "CP", 60, "12000.00"),  # formal notice; charge invoice 40 days ago
    invoice("FN1", "CN", 46, "3000.00"),  # formal notice
    invoice("FE1", "CE", 46, "3000.00"),  # formal notice (English)
    invoice("FX1", "CX", 46, "3000.00"),  # would be a formal notice
    invoice("FR1", "CR", 6, "800.00"),  # reminder 1 today; final reminder 25 days later
    invoice("FF1", "CF", 31, "900.00"),  # final reminder
    invoice("FM1", "CM", 6, "100.00"),  # reminder 1 by email, no address
]


@pytest.fixture
def ledger(db_url: str, tmp_path: Path) -> str:
    import_file(write_csv(tmp_path / "c.csv", CUSTOMERS), "customers", db_url=db_url)
    import_file(write_csv(tmp_path / "i.csv", INVOICES), "invoices", db_url=db_url)
    return db_url


def ids(url: str) -> dict[str, int]:
    with unit_of_work(url) as conn:
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def run(url: str, day: dt.date = AS_OF, **kwargs):  # noqa: ANN003, ANN201
    with unit_of_work(url) as conn:
        return run_dunning(conn, day, **kwargs)


def by_code(result) -> dict[str, dict]:  # noqa: ANN001
    return {r["customer_code"]: r for r in result.plan}


def gross_penalties(amount: str, rel_days: int, day: dt.date) -> int:
    """The penalties of an unpaid invoice as of `day`, with the shipped reference rates."""
    rates = RateTable((r.kind, r.valid_from, r.rate) for r in shipped_rates())
    due_date = AS_OF - dt.timedelta(days=rel_days)
    result = compute_penalties(Decimal(amount), due_date, [], rates, as_of=day)
    return to_minor(result.penalties, "EUR")


def test_waived_penalties_are_not_claimed_again(ledger: str) -> None:
    before = by_code(run(ledger, dry_run=True))["CW"]
    assert before["level_code"] == "final_reminder"
    assert before["penalties_minor"] == gross_penalties("5000.00", 31, AS_OF) > 0
    assert before["indemnities_minor"] == 40_00
    with unit_of_work(ledger) as conn:
        waive_penalties(conn, ids(ledger)["CW"], "commercial gesture", "tester", as_of=AS_OF)
    after = by_code(run(ledger, dry_run=True))["CW"]
    assert (after["penalties_minor"], after["indemnities_minor"]) == (0, 0)
    assert "pénalités" not in after["body_text"].split("Reste à payer")[0]
    # Other customers keep their claims.
    assert by_code(run(ledger, dry_run=True))["CF"]["indemnities_minor"] == 40_00


def test_charge_invoice_listed_without_penalties_and_not_claimed_twice(ledger: str) -> None:
    charged_on = AS_OF - dt.timedelta(days=40)
    with unit_of_work(ledger) as conn:
        charge = charge_invoice(conn, ids(ledger)["CP"], charged_on, due_days=5)
    assert charge.number.startswith("PEN-") and charge.indemnities == Decimal("40.00")
    result = run(ledger)
    row = by_code(result)["CP"]
    assert row["level_code"] == "formal_notice" and row["invoice_count"] == 2
    # Only the penalties accrued since the charge invoice; no second indemnity, and none
    # at all on the charge invoice itself (although it is 35 days overdue).
    accrued = gross_penalties("12000.00", 60, AS_OF) - gross_penalties("12000.00", 60, charged_on)
    assert row["penalties_minor"] == accrued > 0
    assert row["indemnities_minor"] == 0
    assert charge.number in row["body_text"]
    line = next(ln for ln in row["body_text"].splitlines() if charge.number in ln)
    assert "35 jours de retard" in line and "pénalités" not in line
    total = to_minor(charge.total, "EUR") + 12_000_00
    assert row["total_due_minor"] == total


def test_customer_in_insolvency_is_not_dunned(ledger: str) -> None:
    with unit_of_work(ledger) as conn:
        conn.execute(update(Customer).where(Customer.code == "CX").values(in_insolvency=True))
    result = run(ledger, dry_run=True)
    assert "CX" not in by_code(result) and "CN" in by_code(result)
    assert result.skipped[SKIP_INSOLVENCY] == 1
    result = run(ledger)
    with unit_of_work(ledger) as conn:
        sent_to = set(
            conn.execute(
                select(Customer.code).join(Communication, Communication.customer_id == Customer.id)
            ).scalars()
        )
    assert "CX" not in sent_to and "CN" in sent_to
    cli = runner.invoke(app, ["--db", ledger, "dunning", "run", "--dry-run", "--json",
                              "--as-of", AS_OF.isoformat()])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    payload = json.loads(cli.stdout)
    assert payload["skipped"][SKIP_INSOLVENCY] == 1 and payload["warnings"] == []


def test_formal_notice_carries_the_legal_mentions_and_deadline(ledger: str) -> None:
    plan = by_code(run(ledger, dry_run=True, deadline_days=10))
    deadline = AS_OF + dt.timedelta(days=10)
    fr, en = plan["CN"], plan["CE"]
    assert fr["level_code"] == en["level_code"] == "formal_notice"
    for text in (fr["body_text"], fr["body_html"]):
        assert "article 1344 du Code civil" in text and "L441-10" in text
        assert format_day(deadline, "fr", "long") in text  # 10 avril 2025
        assert "40 € par facture" in text and "D441-5" in text
        assert "recommandée avec accusé de réception" in text
        assert "13,15 % l'an" in text  # 2025 H1: ECB 3.15 (in force on 1 January) + 10
    for text in (en["body_text"], en["body_html"]):
        assert "article 1344 of the French Civil Code" in text and "L441-10" in text
        assert format_day(deadline, "en", "long") in text  # 10 April 2025
        assert "13.15% per year" in text and "EUR 40 per invoice" in text
    # The first letter the customer ever gets: no "despite our previous reminders".
    assert "précédentes relances" not in fr["body_text"]
    assert "previous reminders" not in en["body_text"]


def test_previous_reminders_only_after_one_was_sent(ledger: str) -> None:
    first = by_code(run(ledger))
    assert first["CR"]["level_code"] == "reminder_1"
    assert first["CF"]["level_code"] == "final_reminder"
    assert "précédentes relances" not in first["CF"]["body_text"]
    later = AS_OF + dt.timedelta(days=25)
    # Not delivered yet: no previous reminder to speak of.
    assert (
        "précédentes relances" not in by_code(run(ledger, later, dry_run=True))["CR"]["body_text"]
    )
    with unit_of_work(ledger) as conn:
        conn.execute(update(Communication).values(status="sent"))
    row = by_code(run(ledger, later, dry_run=True))["CR"]
    assert row["level_code"] == "final_reminder"
    assert "Malgré nos précédentes relances" in row["body_text"]
    assert "Malgré nos précédentes relances" in row["body_html"]


def test_warning_when_the_half_year_rate_is_not_confirmed(ledger: str) -> None:
    # The shipped ECB rates end with 2025-06-11: no entry on or after 1 July 2025, so the
    # rates of 2025 H2, 2026 H1 and 2026 H2 are not confirmed.
    day = dt.date(2026, 11, 23)
    with unit_of_work(ledger) as conn:
        assert load_rate_table(conn).latest("ecb").valid_from < dt.date(2026, 1, 1)
    result = run(ledger, day, dry_run=True)
    assert any(r["penalties_minor"] for r in result.plan)
    assert [w.split(" (")[0] for w in result.warnings] == [
        f"The ECB rate for {half}" for half in ("2025 H2", "2026 H1", "2026 H2")
    ]
    cli = runner.invoke(app, ["--db", ledger, "dunning", "run", "--dry-run", "--json",
                              "--as-of", day.isoformat()])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["warnings"] == result.warnings
    assert result.summary()["warnings"] == result.warnings


def test_dunning_send_reports_and_fails_on_permanent_failures(
    ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCOURS_COMPANY_NAME", "Créancier SAS")
    monkeypatch.setenv("ENCOURS_IBAN", "FR7630006000011234567890189")
    monkeypatch.setenv("ENCOURS_COMPANY_SIREN", "732829320")
    with unit_of_work(ledger) as conn:
        # Only the email without an address is left to deliver.
        run_dunning(conn, AS_OF)
        conn.execute(
            update(Communication)
            .where(Communication.to_address.is_not(None) | (Communication.channel != "email"))
            .values(status="cancelled")
        )
    args = ["--db", ledger, "dunning", "send", "--as-of", AS_OF.isoformat(),
            "--out-dir", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["emails_failed"] == 1 and report["emails_sent"] == 0
    assert "no email address" in report["failed"][0]["error"]
    assert "SendReport(" not in result.stdout
    # Nothing left: a second send reports it in words and exits 0.
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "Emails sent: 0" in again.stdout and "SendReport(" not in again.stdout
