"""A dunning run over a real database (SQLite, and PostgreSQL when configured): levels,
reruns, netting, penalties, approvals, templates in French and English."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.engine import run_dunning
from encours.collections.policies import assign
from encours.generate import generate_portfolio
from encours.services.imports import import_file
from encours.store.collections_schema import Task
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication, CommunicationItem, TimelineEvent
from encours.store.risk_schema import RiskAssessment
from encours.store.schema import AuditEntry, Customer, Document

AS_OF = dt.date(2025, 3, 31)
runner = CliRunner()


def due(rel_days: int) -> str:
    return (AS_OF - dt.timedelta(days=rel_days)).isoformat()


def write_csv(path: Path, rows: list[dict]) -> Path:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def customer(code: str, lang: str = "fr", **extra) -> dict:  # noqa: ANN003
    return {"customer_id": code, "name": f"Société {code}", "segment": "late",
            "collector": "Marie Martin", "account_owner": "Paul Vendeur",
            "contact_name": f"Contact {code}", "contact_email": f"{code.lower()}@example.com",
            "contact_language": lang, "is_consumer": "false", **extra}  # fmt: skip


def invoice(number: str, code: str, rel_days: int, amount: str, **extra) -> dict:  # noqa: ANN003
    issue = (AS_OF - dt.timedelta(days=rel_days + 30)).isoformat()
    return {"invoice_number": number, "customer_id": code, "issue_date": issue,
            "due_date": due(rel_days), "amount": amount, "currency": "EUR",
            "disputed": "false", "document_type": "invoice", **extra}  # fmt: skip


CUSTOMERS = [
    customer("CA"), customer("CB"), customer("CC"), customer("CD"), customer("CE"),
    customer("CF", "en"), customer("CG"), customer("CH"), customer("CI"),
    customer("CJ", is_consumer="true"),
]  # fmt: skip
INVOICES = [
    invoice("FA1", "CA", -4, "1000.00"),  # courtesy D-5
    invoice("FA2", "CA", -20, "300.00"),  # not yet in the courtesy window
    invoice("FB1", "CB", 6, "1200.00"),  # reminder 1 (D+5)
    invoice("FC1", "CC", 16, "800.00"),  # reminder 2 (D+15, phone)
    invoice("FC2", "CC", 2, "150.00"),  # overdue, listed with it
    invoice("FD1", "CD", 31, "5000.00"),  # final reminder (D+30, penalties)
    invoice("FE1", "CE", 46, "3000.00"),  # formal notice (D+45, approval)
    invoice("FF1", "CF", 6, "1234.56"),  # English reminder 1
    invoice("FG1", "CG", 20, "999.00", disputed="true"),  # disputed: left out
    invoice("FG2", "CG", 6, "100.00"),
    invoice("FH1", "CH", 10, "500.00"),  # netted by a credit note
    {"invoice_number": "AH1", "customer_id": "CH", "issue_date": due(12), "amount": "500.00",
     "currency": "EUR", "document_type": "credit_note"},
    invoice("FI1", "CI", 10, "800.00"),  # 300 unapplied cash: 500 due
    invoice("FJ1", "CJ", 31, "700.00"),  # consumer: no penalties
]  # fmt: skip
PAYMENTS = [{"payment_id": "PI1", "customer_id": "CI", "date": due(5), "amount": "300.00",
             "currency": "EUR", "invoice_number": ""}]  # fmt: skip


@pytest.fixture
def ledger(db_url: str, tmp_path: Path) -> str:
    import_file(write_csv(tmp_path / "c.csv", CUSTOMERS), "customers", db_url=db_url)
    import_file(write_csv(tmp_path / "i.csv", INVOICES), "invoices", db_url=db_url)
    import_file(write_csv(tmp_path / "p.csv", PAYMENTS), "payments", db_url=db_url,
                unapplied="keep")  # fmt: skip
    return db_url


def run(url: str, day: dt.date = AS_OF, **kwargs):  # noqa: ANN003, ANN201
    with unit_of_work(url) as conn:
        return run_dunning(conn, day, **kwargs)


def comms(url: str) -> dict[str, dict]:
    """customer code -> its latest communication (as a dict) with its invoice numbers."""
    with unit_of_work(url) as conn:
        rows = conn.execute(
            select(Communication.__table__, Customer.code.label("code"))
            .join(Customer.__table__, Customer.id == Communication.customer_id)
            .order_by(Communication.id)
        ).mappings().all()  # fmt: skip
        items = conn.execute(
            select(CommunicationItem.communication_id, Document.number)
            .join(Document.__table__, Document.id == CommunicationItem.document_id)
        ).all()  # fmt: skip
    numbers: dict[int, list[str]] = {}
    for comm_id, number in items:
        numbers.setdefault(comm_id, []).append(number)
    return {r["code"]: {**r, "numbers": sorted(numbers.get(r["id"], []))} for r in rows}


def count(url: str, table) -> int:  # noqa: ANN001
    with unit_of_work(url) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_levels_netting_penalties_and_rerun(ledger: str) -> None:
    result = run(ledger)
    assert not result.errors
    got = comms(ledger)
    levels = {code: c["level_code"] for code, c in got.items()}
    assert levels == {
        "CA": "courtesy", "CB": "reminder_1", "CC": "reminder_2", "CD": "final_reminder",
        "CE": "formal_notice", "CF": "reminder_1", "CG": "reminder_1", "CI": "reminder_1",
        "CJ": "final_reminder",
    }  # fmt: skip
    assert "CH" not in got  # credit note nets it to zero
    assert got["CA"]["numbers"] == ["FA1"]  # the invoice coming due only
    assert got["CC"]["numbers"] == ["FC1", "FC2"]
    assert got["CG"]["numbers"] == ["FG2"]  # disputed invoice left out
    assert got["CI"]["total_due_minor"] == 500_00
    # channels, statuses and approvals
    assert got["CC"]["channel"] == "phone" and got["CC"]["status"] == "sent"
    assert got["CE"]["channel"] == "letter" and got["CE"]["status"] == "draft"
    assert got["CE"]["requires_approval_by"] == "credit_manager"
    assert got["CB"]["status"] == "approved" and got["CB"]["to_address"] == "cb@example.com"
    # penalties at D+30: ECB + 10 points on 5000 for 31 days, and 40 EUR
    assert got["CD"]["penalties_minor"] > 0 and got["CD"]["indemnities_minor"] == 40_00
    assert got["CE"]["indemnities_minor"] == 40_00
    assert got["CJ"]["penalties_minor"] == 0 and got["CJ"]["indemnities_minor"] == 0
    assert got["CB"]["penalties_minor"] == 0
    # the phone level is a task for the collector
    with unit_of_work(ledger) as conn:
        tasks = conn.execute(select(Task.assignee, Task.due_day, Task.status)).all()
    assert [tuple(t) for t in tasks] == [("Marie Martin", AS_OF, "open")]
    # timeline and audit log
    assert count(ledger, TimelineEvent.__table__) == len(got)
    with unit_of_work(ledger) as conn:
        audited = conn.execute(
            select(func.count()).where(AuditEntry.action == "dunning.communication")
        ).scalar_one()
    assert audited == len(got)

    # Running again for the same day creates nothing new.
    before = count(ledger, Communication.__table__)
    again = run(ledger)
    assert again.plan == [] and count(ledger, Communication.__table__) == before
    assert again.skipped["already_sent"] == len(got)

    # 15 days later: escalation only where the most overdue invoice reached a higher level.
    later = run(ledger, AS_OF + dt.timedelta(days=15))
    new = {r["customer_code"]: r["level_code"] for r in later.plan}
    assert new["CB"] == "reminder_2" and new["CD"] == "formal_notice"
    assert new["CA"] == "reminder_1"  # FA1 is now 11 days overdue
    assert "CE" not in new  # formal notice already sent (draft) in this cycle


def test_french_and_english_rendering(ledger: str) -> None:
    run(ledger)
    got = comms(ledger)
    fr, en = got["CB"], got["CF"]
    assert fr["language"] == "fr" and en["language"] == "en"
    assert "FB1" in fr["body_text"] and "1\u202f200,00\xa0€" in fr["body_text"]
    assert "Relance" in fr["subject"] and "FR76 3000 6000 0112 3456 7890 189" in fr["body_text"]
    assert "FF1" in en["body_text"] and "€1,234.56" in en["body_text"]
    assert "Reminder" in en["subject"] and "Marie Martin" in en["body_text"]
    assert "<td>FF1</td>" in en["body_html"]
    formal = got["CE"]
    assert "mise en demeure" in formal["body_text"].lower() and "FE1" in formal["body_html"]
    assert "Indemnité forfaitaire" in got["CD"]["body_text"]


def test_approval_by_the_right_role(ledger: str) -> None:
    run(ledger)
    url = ledger
    result = runner.invoke(app, ["--db", url, "dunning", "approve", "--all", "--as", "sales"])
    assert result.exit_code == 0, result.output
    assert comms(url)["CE"]["status"] == "draft"
    result = runner.invoke(app, ["--db", url, "dunning", "approve", "--customer", "CE",
                                 "--as", "credit_manager"])  # fmt: skip
    assert result.exit_code == 0, result.output
    ce = comms(url)["CE"]
    assert ce["status"] == "approved" and ce["approved_by"].startswith("credit_manager:")
    bad = runner.invoke(app, ["--db", url, "dunning", "approve", "--all", "--as", "boss"])
    assert bad.exit_code == 1


def test_template_error_stops_that_message_only(
    ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "templates" / "en"
    override.mkdir(parents=True)
    (override / "reminder_1.email.j2").write_text(
        '{% set subject %}Hi {{ customer.nmae }}{% endset %}{% set text %}x{% endset %}'
        '{% set html %}x{% endset %}', encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("ENCOURS_TEMPLATE_DIR", str(tmp_path / "templates"))
    result = run(ledger)
    assert [(e.customer_code, e.template) for e in result.errors] == [
        ("CF", "en/reminder_1.email.j2")
    ]
    assert "nmae" in result.errors[0].message
    got = comms(ledger)
    assert "CF" not in got and got["CB"]["level_code"] == "reminder_1"  # French: shipped file
    # Fixed template: the next run of the day creates the missing message only.
    (override / "reminder_1.email.j2").write_text(
        "{% set subject %}Custom {{ customer.name }}{% endset %}"
        "{% set text %}Pay {{ totals.net_due_minor|money(currency) }}{% endset %}"
        "{% set html %}<p>{{ customer.name }}</p>{% endset %}", encoding="utf-8")  # fmt: skip
    again = run(ledger)
    assert [r["customer_code"] for r in again.plan] == ["CF"] and not again.errors
    cf = comms(ledger)["CF"]
    assert cf["subject"] == "Custom Société CF" and "€1,234.56" in cf["body_text"]


def test_cli_dry_run_json_then_run(ledger: str) -> None:
    args = ["--db", ledger, "dunning", "run", "--as-of", AS_OF.isoformat()]
    dry = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] and plan["messages"] == 9
    assert count(ledger, Communication.__table__) == 0
    table = runner.invoke(app, [*args, "--dry-run"])
    assert table.exit_code == 0 and "9 messages (1 awaiting approval)" in table.stdout
    real = runner.invoke(app, [*args, "--json"])
    assert json.loads(real.stdout)["messages"] == 9
    listed = runner.invoke(app, ["--db", ledger, "dunning", "list", "--status", "draft", "--json"])
    assert [r["customer_code"] for r in json.loads(listed.stdout)] == ["CE"]
    rerun = runner.invoke(app, [*args, "--json"])
    assert json.loads(rerun.stdout)["messages"] == 0


def test_policy_assignment_by_segment_and_customer(ledger: str) -> None:
    base = ["--db", ledger, "dunning", "policy"]
    assert runner.invoke(app, [*base, "assign", "gentle", "--segment", "late"]).exit_code == 0
    assert runner.invoke(app, [*base, "assign", "standard", "--customer", "CD"]).exit_code == 0
    assert runner.invoke(app, [*base, "assign", "x", "--customer", "NOPE"]).exit_code == 1
    listed = json.loads(runner.invoke(app, [*base, "list", "--json"]).stdout)
    assert {p["code"] for p in listed["policies"]} == {"standard", "gentle"}
    run(ledger)
    got = comms(ledger)
    assert "CB" not in got  # D+6: the gentle policy's first reminder is at D+10
    assert got["CC"]["policy_code"] == "gentle" and got["CC"]["level_code"] == "reminder_1"
    assert got["CD"]["policy_code"] == "standard" and got["CD"]["level_code"] == "final_reminder"
    assert got["CE"]["policy_code"] == "gentle" and got["CE"]["level_code"] == "final_reminder"
    assert got["CE"]["requires_approval_by"] == "sales" and got["CE"]["penalties_minor"] == 0
    # editing a level through the CLI
    edit = runner.invoke(app, [*base, "level", "gentle", "reminder_1", "--days", "7"])
    assert edit.exit_code == 0, edit.output
    shown = json.loads(runner.invoke(app, [*base, "show", "gentle", "--json"]).stdout)
    assert [lv["days"] for lv in shown["levels"]] == [-5, 7, 25, 45]


def test_generated_portfolio_cycle(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "pf"
    generate_portfolio(out, customers=80, invoices=2000, seed=11, end=dt.date(2025, 6, 30))
    for kind in ("customers", "invoices", "payments"):
        import_file(out / f"{kind}.csv", kind, db_url=db_url)
    day = dt.date(2025, 6, 30)
    first = run(db_url, day)
    assert first.plan and not first.errors
    created = count(db_url, Communication.__table__)
    assert created == len(first.plan)
    assert count(db_url, CommunicationItem.__table__) == sum(r["invoice_count"] for r in first.plan)
    assert run(db_url, day).plan == []
    assert count(db_url, Communication.__table__) == created
    # a week later some customers escalate, none gets the same level twice
    week = run(db_url, day + dt.timedelta(days=7))
    seen = {(r["customer_id"], r["level_code"]) for r in first.plan}
    assert not [r for r in week.plan if (r["customer_id"], r["level_code"]) in seen
                and r["level_code"] != "courtesy"]  # fmt: skip


def test_policy_assigned_to_a_risk_class_applies(db_url: str, tmp_path: Path) -> None:
    customers = write_csv(tmp_path / "c.csv", [customer("RA"), customer("RB")])
    invoices = write_csv(tmp_path / "i.csv", [invoice("RA-1", "RA", 20, "500.00"),
                                              invoice("RB-1", "RB", 20, "500.00")])  # fmt: skip
    import_file(customers, "customers", db_url=db_url)
    import_file(invoices, "invoices", db_url=db_url)
    with unit_of_work(db_url) as conn:
        ids = dict(conn.exec_driver_sql("SELECT code, id FROM customers").all())
        conn.execute(insert(RiskAssessment), [
            {"customer_id": ids["RA"], "as_of": AS_OF - dt.timedelta(days=3), "risk_class": "A",
             "review_date": AS_OF + dt.timedelta(days=300), "reasons": []},
            {"customer_id": ids["RB"], "as_of": AS_OF - dt.timedelta(days=3), "risk_class": "D",
             "review_date": AS_OF + dt.timedelta(days=300), "reasons": []},
        ])  # fmt: skip
        assign(conn, "risk_class", "A", "gentle", actor="test")
        result = run_dunning(conn, AS_OF, dry_run=True)
    policies = {row["customer_code"]: row["policy_code"] for row in result.plan}
    assert policies == {"RA": "gentle", "RB": "standard"}
