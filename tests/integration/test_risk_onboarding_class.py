"""Issue 5 audit: the onboarding class survives `risk assess` while a customer has neither
statements nor payment history; statements entered (CLI/service) and class assessments are
audited (one entry per statement, one per assessment run)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from encours import i18n
from encours.cli.app import app
from encours.imports.canonical import DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.risk import classes, onboarding, statements
from encours.store.db import unit_of_work
from encours.store.risk_schema import FinancialStatement
from encours.store.schema import AuditEntry

D = dt.date
DAY = D(2024, 6, 30)
SOUND_STATEMENT = {"total_assets": 1000, "current_assets": 500, "current_liabilities": 300,
                   "retained_earnings": 150, "ebit": 80, "equity": 400,
                   "total_liabilities": 600}  # fmt: skip


@pytest.fixture(autouse=True)
def _english() -> None:
    i18n.set_language("en")


def onboard_young(url: str, code: str = "YNG") -> None:
    with unit_of_work(url) as conn:
        result = onboarding.onboard_customer(
            conn, code, "Jeune Pousse SAS", created=D(2023, 1, 10), country="FR",
            checklist=["payment_terms"], as_of=DAY, actor="alice",
        )  # fmt: skip
    assert result.risk_class == "D"  # B + young company + checklist incomplete


def assessed(url: str, day: dt.date, code: str) -> dict:
    with unit_of_work(url) as conn:
        frame = classes.assess(conn, day, actor="bob")
        cid = conn.execute(select(onboarding.CUSTOMERS.c.id)
                           .where(onboarding.CUSTOMERS.c.code == code)).scalar_one()  # fmt: skip
    row = frame.filter(pl.col("customer_id") == cid).row(0, named=True)
    return {**row, "reasons": json.loads(row["reasons"])}


def audit(url: str, action: str) -> list[dict]:
    table = AuditEntry.__table__
    with unit_of_work(url) as conn:
        query = select(table).where(table.c.action == action).order_by(table.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def test_onboarding_class_kept_without_statements_nor_history(db_url: str) -> None:
    onboard_young(db_url)
    nxt = assessed(db_url, DAY + dt.timedelta(days=1), "YNG")
    assert nxt["risk_class"] == "D"
    assert nxt["previous_class"] == "D"
    codes = [r["code"] for r in nxt["reasons"]]
    assert "onboarding_kept" in codes and "no_data" not in codes
    text = classes.reasons_text(nxt["reasons"])
    assert "No statements and no payment history yet: onboarding class D of 2024-06-30 kept" \
        in text  # fmt: skip
    # a month later, still nothing known: still D
    assert assessed(db_url, D(2024, 7, 31), "YNG")["risk_class"] == "D"


def test_onboarding_class_kept_after_a_same_day_assessment(db_url: str) -> None:
    """`risk assess` on the onboarding day replaces the onboarding row: the class is then
    taken from the onboarding profile."""
    onboard_young(db_url)
    assert assessed(db_url, DAY, "YNG")["risk_class"] == "D"
    later = assessed(db_url, D(2024, 7, 15), "YNG")
    assert later["risk_class"] == "D"
    assert [r["code"] for r in later["reasons"]].count("onboarding_kept") == 1


def test_statements_replace_the_onboarding_class(db_url: str) -> None:
    onboard_young(db_url)
    with unit_of_work(db_url) as conn:
        replaced = statements.save_statement(conn, "YNG", 2023, SOUND_STATEMENT,
                                             actor="carol")  # fmt: skip
    assert replaced is False
    row = assessed(db_url, DAY + dt.timedelta(days=1), "YNG")
    assert row["altman_zone"] == "safe"
    assert row["risk_class"] == "A"  # the normal combination applies
    assert "onboarding_kept" not in [r["code"] for r in row["reasons"]]


def test_customer_never_onboarded_keeps_default_c(db_url: str) -> None:
    frame = pl.DataFrame([{"_line": 2, "invoice_number": "F1", "customer_id": "OLD",
                           "customer_name": "Old", "issue_date": D(2024, 6, 1),
                           "due_date": D(2024, 8, 1), "amount_minor": 100_00,
                           "currency": "EUR"}])  # fmt: skip
    with unit_of_work(db_url) as conn:
        load_batch(conn, CanonicalBatch(source="i.csv",
                                        documents=conform(frame, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
    row = assessed(db_url, DAY, "OLD")
    assert row["risk_class"] in ("A", "B", "C")
    assert "onboarding_kept" not in [r["code"] for r in row["reasons"]]


def test_assessment_run_is_audited_once_with_counts(db_url: str) -> None:
    onboard_young(db_url, "Y1")
    onboard_young(db_url, "Y2")
    assessed(db_url, D(2024, 7, 1), "Y1")
    entries = audit(db_url, "assess")
    assert len(entries) == 1  # one per run, not per customer
    entry = entries[0]
    assert (entry["actor"], entry["entity"], entry["entity_key"]) == (
        "bob",
        "risk_assessments",
        "2024-07-01",
    )
    assert entry["after"] == {"customers": 2, "classes": {"D": 2}, "changed": 0}


def test_statements_add_cli_and_audit(db_url: str) -> None:
    onboard_young(db_url)
    run = CliRunner().invoke
    args = ["--db", db_url, "risk", "statements", "add", "YNG", "--year", "2023",
            "--revenue", "1 200 000,50", "--equity", "-15000", "--field", "ebit=80000",
            "--field", "total_assets=900000", "--period-end", "2023-12-31", "--by", "dave",
            "--json"]  # fmt: skip
    result = run(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["replaced"] is False
    assert payload["amounts"]["revenue"] == "1200000.50"
    with unit_of_work(db_url) as conn:
        row = conn.execute(select(FinancialStatement.__table__)).mappings().one()
    assert (row["revenue_minor"], row["equity_minor"], row["ebit_minor"]) == (
        120000050,
        -1500000,
        8000000,
    )
    assert row["net_income_minor"] is None  # not given: unknown, never 0
    assert row["source"] == "entered"
    # again: replaces, audited with the previous values
    again = run(app, args)
    assert again.exit_code == 0 and json.loads(again.output)["replaced"] is True
    entries = audit(db_url, "enter_statement")
    assert [e["entity_key"] for e in entries] == ["YNG/2023", "YNG/2023"]
    assert entries[0]["before"] is None and entries[0]["actor"] == "dave"
    assert entries[1]["before"]["revenue"] == "1200000.50"
    assert entries[1]["after"]["equity"] == "-15000.00"
    # bad input: usage errors, nothing written
    bad = run(app, ["--db", db_url, "risk", "statements", "add", "YNG", "--year", "2022",
                    "--field", "nonsense=1"])  # fmt: skip
    assert bad.exit_code == 2 and "nonsense" in bad.output
    bad = run(app, ["--db", db_url, "risk", "statements", "add", "YNG", "--year", "2022",
                    "--revenue", "abc"])  # fmt: skip
    assert bad.exit_code == 2
    bad = run(app, ["--db", db_url, "risk", "statements", "add", "YNG", "--year", "2022"])
    assert bad.exit_code == 2
    unknown = run(app, ["--db", db_url, "risk", "statements", "add", "NOPE", "--year", "2022",
                        "--revenue", "1"])  # fmt: skip
    assert unknown.exit_code == 1
    finer = run(app, ["--db", db_url, "risk", "statements", "add", "YNG", "--year", "2022",
                      "--revenue", "1.005"])  # fmt: skip
    assert finer.exit_code == 1
    assert len(audit(db_url, "enter_statement")) == 2


def test_statements_import_is_audited_per_statement(db_url: str, tmp_path) -> None:  # noqa: ANN001
    onboard_young(db_url, "Y1")
    onboard_young(db_url, "Y2")
    path = tmp_path / "fs.csv"
    path.write_text("customer_id;fiscal_year;revenue;equity\nY1;2023;1000;200\n"
                    "Y2;2023;2000,5;\n", encoding="utf-8")  # fmt: skip
    result = CliRunner().invoke(app, ["--db", db_url, "risk", "statements", "import",
                                      str(path), "--by", "erin"])  # fmt: skip
    assert result.exit_code == 0, result.output
    entries = audit(db_url, "import_statement")
    assert sorted(e["entity_key"] for e in entries) == ["Y1/2023", "Y2/2023"]
    y2 = next(e for e in entries if e["entity_key"] == "Y2/2023")
    assert y2["actor"] == "erin" and y2["after"]["revenue"] == "2000.50"
    assert "equity" not in y2["after"]  # unknown line: not audited as 0
