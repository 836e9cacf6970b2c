"""`check order`: approve, warn or hold with the reasons (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import polars as pl
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from encours import i18n
from encours.imports.canonical import DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.risk.classes import store_assessment
from encours.risk.order_check import check_order
from encours.store.db import unit_of_work
from encours.store.schema import Customer

D = dt.date
AS_OF = D(2024, 6, 30)


def invoice(number: str, customer: str, due: dt.date, amount_minor: int,
            disputed: bool = False) -> dict:  # fmt: skip
    return {"invoice_number": number, "customer_id": customer, "customer_name": customer,
            "issue_date": due - dt.timedelta(days=30), "due_date": due,
            "amount_minor": amount_minor, "currency": "EUR", "disputed": disputed}  # fmt: skip


def setup_ledger(url: str, rows: list[dict]) -> None:
    frame = pl.DataFrame([{"_line": i + 2, **r} for i, r in enumerate(rows)])
    batch = CanonicalBatch(source="t.csv", documents=conform(frame, DOCUMENT_SCHEMA))
    with unit_of_work(url) as conn:
        load_batch(conn, batch, kind="invoices")


def set_customer(url: str, code: str, **values: object) -> int:
    table = Customer.__table__
    with unit_of_work(url) as conn:
        conn.execute(update(table).where(table.c.code == code).values(**values))
        return conn.execute(select(table.c.id).where(table.c.code == code)).scalar_one()


def assessed(url: str, customer_id: int, risk_class: str, on: dt.date = D(2024, 6, 1)) -> None:
    with unit_of_work(url) as conn:
        store_assessment(conn, customer_id, on, risk_class, [], source="test")


def check(url: str, code: str, amount: str) -> dict:
    with unit_of_work(url) as conn:
        return check_order(conn, code, Decimal(amount), AS_OF).as_dict()


@pytest.fixture(autouse=True)
def _english() -> None:
    i18n.set_language("en")


@pytest.fixture
def ledger(db_url: str) -> str:
    setup_ledger(db_url, [
        invoice("A1", "GOOD", D(2024, 7, 15), 2000_00),
        invoice("B1", "LATE90", D(2024, 4, 1), 500_00),  # 90 days overdue
        invoice("C1", "LATE40", D(2024, 5, 21), 500_00),  # 40 days overdue
        invoice("D1", "DISPUTE", D(2024, 7, 15), 300_00, disputed=True),
        invoice("E1", "WORST", D(2024, 7, 15), 100_00),
        invoice("F1", "OLDREVIEW", D(2024, 7, 15), 100_00),
        invoice("G1", "CONSUMER", D(2024, 7, 15), 100_00),
        invoice("H1", "NEW", D(2024, 7, 15), 100_00),
    ])  # fmt: skip
    for code, risk_class in (("GOOD", "B"), ("LATE90", "B"), ("LATE40", "B"),
                             ("DISPUTE", "B"), ("WORST", "E"), ("CONSUMER", "A")):  # fmt: skip
        customer_id = set_customer(db_url, code, credit_limit_minor=10_000_00)
        assessed(db_url, customer_id, risk_class)
    customer_id = set_customer(db_url, "OLDREVIEW", credit_limit_minor=10_000_00)
    assessed(db_url, customer_id, "B", on=D(2023, 1, 1))  # review due 2024-01-01
    set_customer(db_url, "CONSUMER", is_consumer=True)
    set_customer(db_url, "NEW", credit_limit_minor=10_000_00)
    return db_url


def test_approve_within_the_limit(ledger: str) -> None:
    result = check(ledger, "GOOD", "1000")
    assert result["decision"] == "approve"
    assert result["reasons"] == []
    assert (result["exposure"], result["limit"], result["order"], result["headroom_after"]) == (
        "2000.00",
        "10000.00",
        "1000.00",
        "7000.00",
    )


def test_warn_near_the_limit_and_hold_over_it(ledger: str) -> None:
    assert check(ledger, "GOOD", "6000")["decision"] == "approve"  # 80 % of the limit
    near = check(ledger, "GOOD", "7500")  # 95 %
    assert near["decision"] == "warn" and near["codes"] == ["near_limit"]
    over = check(ledger, "GOOD", "8000.01")
    assert over["decision"] == "hold" and over["codes"] == ["over_limit"]
    assert over["headroom_after"] == "-0.01"
    assert "exceeds the credit limit" in over["reasons"][0]


def test_old_overdue_holds_recent_overdue_warns(ledger: str) -> None:
    old = check(ledger, "LATE90", "10")
    assert old["decision"] == "hold" and "overdue" in old["codes"]
    assert "90 days overdue" in old["reasons"][0]
    recent = check(ledger, "LATE40", "10")
    assert recent["decision"] == "warn" and recent["codes"] == ["overdue"]


def test_open_dispute_warns(ledger: str) -> None:
    result = check(ledger, "DISPUTE", "10")
    assert result["decision"] == "warn" and result["codes"] == ["dispute"]


def test_class_e_holds(ledger: str) -> None:
    result = check(ledger, "WORST", "10")
    assert result["decision"] == "hold" and result["codes"] == ["class_e"]
    assert result["risk_class"] == "E"


def test_expired_review_and_never_assessed_warn(ledger: str) -> None:
    expired = check(ledger, "OLDREVIEW", "10")
    assert expired["decision"] == "warn" and expired["codes"] == ["review_expired"]
    assert "2024-01-01" in expired["reasons"][0]
    new = check(ledger, "NEW", "10")
    assert new["decision"] == "warn" and new["codes"] == ["not_assessed"]


def test_consumer_warns_and_no_limit_warns(ledger: str) -> None:
    consumer = check(ledger, "CONSUMER", "10")
    assert consumer["decision"] == "warn" and consumer["codes"] == ["consumer"]
    set_customer(ledger, "GOOD", credit_limit_minor=None)
    no_limit = check(ledger, "GOOD", "10")
    assert no_limit["decision"] == "warn" and no_limit["codes"] == ["no_limit"]
    assert no_limit["headroom_after"] is None


def test_insolvency_holds_whatever_the_limit(ledger: str) -> None:
    set_customer(ledger, "GOOD", in_insolvency=True)
    result = check(ledger, "GOOD", "1")
    assert result["decision"] == "hold" and "insolvency" in result["codes"]


def test_cli_json(ledger: str) -> None:
    from encours.cli.app import app

    result = CliRunner().invoke(
        app,
        [
            "--db",
            ledger,
            "check",
            "order",
            "--customer",
            "LATE90",
            "--amount",
            "10",
            "--as-of",
            "2024-06-30",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["decision"] == "hold"
    assert set(payload) >= {"decision", "reasons", "exposure", "limit", "order",
                            "headroom_after"}  # fmt: skip
    unknown = CliRunner().invoke(app, ["--db", ledger, "check", "order", "--customer", "NOPE",
                                       "--amount", "10"])  # fmt: skip
    assert unknown.exit_code == 1
