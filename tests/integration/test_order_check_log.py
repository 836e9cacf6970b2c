"""Order checks are logged (`order_checks`) so that `encours monitor` raises the "large
order for a risky customer" alert; `--no-record` makes a what-if check (SQLite and
PostgreSQL)."""

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
from encours.risk.classes import store_assessment
from encours.store.alerts_schema import Alert, OrderCheck
from encours.store.db import unit_of_work
from encours.store.schema import Customer

D = dt.date
AS_OF = D(2024, 6, 30)
DAY = AS_OF.isoformat()


@pytest.fixture(autouse=True)
def _english() -> None:
    i18n.set_language("en")


@pytest.fixture
def ledger(db_url: str) -> str:
    rows = [
        {"_line": 2, "invoice_number": "R1", "customer_id": "RISKY", "customer_name": "Risky",
         "issue_date": D(2024, 6, 1), "due_date": D(2024, 7, 31), "amount_minor": 5000_00,
         "currency": "EUR", "disputed": False},
        {"_line": 3, "invoice_number": "S1", "customer_id": "SAFE", "customer_name": "Safe",
         "issue_date": D(2024, 6, 1), "due_date": D(2024, 7, 31), "amount_minor": 5000_00,
         "currency": "EUR", "disputed": False},
    ]  # fmt: skip
    batch = CanonicalBatch(source="t.csv", documents=conform(pl.DataFrame(rows), DOCUMENT_SCHEMA))
    with unit_of_work(db_url) as conn:
        load_batch(conn, batch, kind="invoices")
        table = Customer.__table__
        ids = dict(conn.execute(select(table.c.code, table.c.id)).all())
        for code, risk_class in (("RISKY", "D"), ("SAFE", "A")):
            conn.execute(table.update().where(table.c.id == ids[code])
                         .values(credit_limit_minor=100_000_00))  # fmt: skip
            store_assessment(conn, ids[code], D(2024, 6, 1), risk_class, [], source="test")
    return db_url


def _cli(url: str, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--db", url, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _check(url: str, code: str, amount: str, *extra: str) -> dict:
    return _cli(url, "check", "order", "--customer", code, "--amount", amount, "--as-of", DAY,
                "--by", "sales.rep", "--json", *extra)  # fmt: skip


def _logged(url: str) -> list[dict]:
    with unit_of_work(url) as conn:
        stmt = select(OrderCheck.__table__).order_by(OrderCheck.id)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def test_cli_check_is_logged_and_raises_the_large_order_alert_once(ledger: str) -> None:
    big = _check(ledger, "RISKY", "25000")
    assert big["decision"] == "warn" and "class_d" in big["codes"]
    _check(ledger, "SAFE", "25000")  # large, but not a risky class
    _check(ledger, "RISKY", "500")  # risky, but small
    what_if = _check(ledger, "RISKY", "99000", "--no-record")
    assert what_if["order_check_id"] is None and what_if["decision"] == "hold"

    logged = _logged(ledger)
    assert [(r["amount_minor"], r["decision"], r["risk_class"]) for r in logged] == [
        (25000_00, "warn", "D"), (25000_00, "approve", "A"), (500_00, "warn", "D"),
    ]  # fmt: skip
    first = logged[0]
    assert first["id"] == big["order_check_id"]
    assert (first["as_of"], first["currency"], first["actor"]) == (AS_OF, "EUR", "sales.rep")
    assert (first["exposure_minor"], first["limit_minor"]) == (5000_00, 100_000_00)
    assert first["codes"] == big["codes"]

    report = _cli(ledger, "monitor", "--as-of", DAY, "--json")
    assert report["counts"]["large_order"] == {"found": 1, "new": 1, "reraised": 0, "open": 1}
    again = _cli(ledger, "monitor", "--as-of", DAY, "--json")  # deduplicated
    assert again["counts"]["large_order"] == {"found": 1, "new": 0, "reraised": 0, "open": 1}
    with unit_of_work(ledger) as conn:
        rows = conn.execute(select(Alert.__table__).where(Alert.kind == "large_order"))
        rows = [dict(r) for r in rows.mappings()]
    assert len(rows) == 1
    assert rows[0]["key"] == f"large_order:{big['order_check_id']}"
    assert rows[0]["details"]["amount_minor"] == 25000_00
    assert "25,000.00" in rows[0]["title"] or "25 000,00" in rows[0]["title"]


def test_cli_text_output_says_a_what_if_check_is_not_logged(ledger: str) -> None:
    result = CliRunner().invoke(app, ["--db", ledger, "check", "order", "--customer", "SAFE",
                                      "--amount", "10", "--as-of", DAY, "--no-record"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "approve" in result.output and "not logged" in result.output
    assert _logged(ledger) == []
    unknown = CliRunner().invoke(app, ["--db", ledger, "check", "order", "--customer", "NOPE",
                                       "--amount", "10"])  # fmt: skip
    assert unknown.exit_code == 1
    assert _logged(ledger) == []


def test_a_negative_order_amount_is_refused_and_not_logged(ledger: str) -> None:
    result = CliRunner().invoke(app, ["--db", ledger, "check", "order", "--customer", "SAFE",
                                      "--amount", "-5", "--as-of", DAY, "--json"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "negative" in result.output
    assert _logged(ledger) == []
