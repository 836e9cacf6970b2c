"""Pause rules and collectors' actions over a real database, through the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.engine import run_dunning
from encours.services.imports import import_file
from encours.store.collections_schema import Dispute, PaymentPlanInstalment, Promise, Task
from encours.store.db import unit_of_work
from encours.store.schema import AuditEntry, Document

AS_OF = dt.date(2025, 3, 31)
D = dt.timedelta
runner = CliRunner()


def write_csv(path: Path, rows: list[dict]) -> Path:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def customer(code: str) -> dict:
    return {"customer_id": code, "name": f"Société {code}", "collector": "Marie Martin",
            "contact_name": f"Contact {code}", "contact_email": f"{code.lower()}@example.com",
            "contact_language": "fr"}  # fmt: skip


def invoice(number: str, code: str, rel_days: int, amount: str) -> dict:
    return {"invoice_number": number, "customer_id": code,
            "issue_date": (AS_OF - D(rel_days + 30)).isoformat(),
            "due_date": (AS_OF - D(rel_days)).isoformat(), "amount": amount,
            "currency": "EUR"}  # fmt: skip


@pytest.fixture
def ledger(db_url: str, tmp_path: Path) -> str:
    customers = [customer(c) for c in ("PA", "PB", "PC", "PD", "PE")]
    invoices = [
        invoice("PA1", "PA", 20, "1000.00"), invoice("PB1", "PB", 20, "1000.00"),
        invoice("PC1", "PC", 20, "1000.00"), invoice("PD1", "PD", 20, "1000.00"),
        invoice("PE1", "PE", 20, "600.00"), invoice("PE2", "PE", 6, "400.00"),
    ]  # fmt: skip
    import_file(write_csv(tmp_path / "c.csv", customers), "customers", db_url=db_url)
    import_file(write_csv(tmp_path / "i.csv", invoices), "invoices", db_url=db_url)
    return db_url


def cli(url: str, *args: str, ok: bool = True):  # noqa: ANN201
    result = runner.invoke(app, ["--db", url, "dunning", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def levels(url: str, day: dt.date) -> dict[str, str]:
    with unit_of_work(url) as conn:
        result = run_dunning(conn, day)
    return {r["customer_code"]: r["level_code"] for r in result.plan}


def pay(url: str, tmp_path: Path, pid: str, code: str, day: dt.date, amount: str) -> None:
    rows = [{"payment_id": pid, "customer_id": code, "date": day.isoformat(), "amount": amount,
             "currency": "EUR", "invoice_number": ""}]  # fmt: skip
    import_file(write_csv(tmp_path / f"{pid}.csv", rows), "payments", db_url=url)


def test_dispute_excludes_until_resolved(ledger: str) -> None:
    cli(ledger, "dispute", "PE1", "--reason", "goods damaged", "--as-of", AS_OF.isoformat())
    assert cli(ledger, "dispute", "PE1", "--reason", "again", ok=False).exit_code == 1
    assert cli(ledger, "dispute", "PE1", ok=False).exit_code == 1  # a reason is required
    got = levels(ledger, AS_OF)
    assert got["PE"] == "reminder_1"  # only PE2 (D+6) is dunned
    with unit_of_work(ledger) as conn:
        assert conn.execute(select(Document.disputed).where(Document.number == "PE1")).scalar()
    cli(ledger, "dispute", "PE1", "--resolve", "--reason", "credit agreed",
        "--as-of", (AS_OF + D(1)).isoformat())  # fmt: skip
    with unit_of_work(ledger) as conn:
        dispute = conn.execute(select(Dispute.resolved_on, Dispute.resolution)).one()
    assert tuple(dispute) == (AS_OF + D(1), "credit agreed")
    assert levels(ledger, AS_OF + D(1))["PE"] == "reminder_2"  # PE1 is back, at D+21


def test_promise_pauses_then_escalates_when_broken(ledger: str, tmp_path: Path) -> None:
    day = AS_OF.isoformat()
    cli(ledger, "promise", "PA", "--date", (AS_OF + D(10)).isoformat(), "--amount", "1000",
        "--as-of", day)  # fmt: skip
    cli(ledger, "promise", "PB", "--date", (AS_OF + D(10)).isoformat(), "--amount", "1000",
        "--as-of", day)  # fmt: skip
    assert cli(ledger, "promise", "PA", "--date", day, "--amount", "-3", ok=False).exit_code == 1
    got = levels(ledger, AS_OF)
    assert "PA" not in got and "PB" not in got and got["PC"] == "reminder_2"
    # still paused on the promised date + grace (3 days)
    assert "PA" not in levels(ledger, AS_OF + D(13))
    pay(ledger, tmp_path, "PAY-B", "PB", AS_OF + D(9), "1000.00")  # PB keeps its promise
    got = levels(ledger, AS_OF + D(14))
    # broken: PA escalates past reminder 2 (never sent) to at least the level after the
    # last one sent; at D+34 the days alone give the final reminder
    assert got["PA"] == "final_reminder" and "PB" not in got
    with unit_of_work(ledger) as conn:
        statuses = dict(conn.execute(select(Promise.customer_id, Promise.status)).all())
    assert sorted(statuses.values()) == ["broken", "kept"]


def test_broken_promise_escalates_beyond_the_days(ledger: str) -> None:
    levels(ledger, AS_OF)  # reminder_2 (D+20) sent to PA
    cli(ledger, "promise", "PA", "--date", (AS_OF + D(1)).isoformat(), "--amount", "500",
        "--grace", "0", "--as-of", AS_OF.isoformat())  # fmt: skip
    # D+22: by the days PA would stay at reminder 2; the broken promise escalates it
    assert levels(ledger, AS_OF + D(2))["PA"] == "final_reminder"


def test_hold_pauses_until_its_end_date(ledger: str) -> None:
    assert cli(ledger, "hold", "PC", "--until", "2025-04-10", "--reason", "", ok=False).exit_code
    cli(ledger, "hold", "PC", "--reason", "CEO asked", "--until", (AS_OF + D(5)).isoformat(),
        "--as-of", AS_OF.isoformat())  # fmt: skip
    assert "PC" not in levels(ledger, AS_OF)
    assert "PC" not in levels(ledger, AS_OF + D(5))
    assert levels(ledger, AS_OF + D(6))["PC"] == "reminder_2"


def test_payment_plan_followed(ledger: str, tmp_path: Path) -> None:
    first, second = AS_OF + D(10), AS_OF + D(40)
    cli(ledger, "plan", "PD", "--instalment", f"{first}:500", "--instalment", f"{second}:500",
        "--as-of", AS_OF.isoformat())  # fmt: skip
    assert "PD" not in levels(ledger, AS_OF)
    pay(ledger, tmp_path, "PAY-D1", "PD", first, "500.00")
    assert "PD" not in levels(ledger, AS_OF + D(20))  # first instalment paid: on track
    with unit_of_work(ledger) as conn:
        states = conn.execute(
            select(PaymentPlanInstalment.status).order_by(PaymentPlanInstalment.due_date)
        ).scalars().all()  # fmt: skip
    assert states == ["paid", "due"]
    got = levels(ledger, second + D(4))  # second instalment missed (grace 3 days)
    assert got["PD"] in ("final_reminder", "formal_notice")
    bad = cli(ledger, "plan", "PD", "--instalment", "2025-13-01:5", ok=False)
    assert bad.exit_code == 1


def test_call_outcome_closes_the_task_and_timeline(ledger: str) -> None:
    levels(ledger, AS_OF)  # D+20: reminder 2 = phone tasks
    tasks = json.loads(cli(ledger, "tasks", "--json").stdout)
    assert {t["customer_code"] for t in tasks} == {"PA", "PB", "PC", "PD", "PE"}
    cli(ledger, "call", "PA", "--outcome", "no_answer", "--note", "voicemail",
        "--as-of", AS_OF.isoformat())  # fmt: skip
    assert cli(ledger, "call", "PA", "--outcome", "maybe", ok=False).exit_code == 1
    with unit_of_work(ledger) as conn:
        done = conn.execute(select(Task.outcome).where(Task.status == "done")).scalars().all()
        actions = set(conn.execute(select(AuditEntry.action)).scalars())
    assert done == ["no_answer"]
    assert {"dunning.communication", "dunning.call"} <= actions
    timeline = json.loads(cli(ledger, "timeline", "PA", "--json").stdout)
    assert [e["kind"] for e in timeline] == ["communication", "call"]
    assert "voicemail" in timeline[-1]["summary"]
    assert cli(ledger, "timeline", "NOPE", ok=False).exit_code == 1


def test_send_needs_the_outbox(ledger: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("encours.collections.outbox") is not None:
        pytest.skip("the outbox sender is installed: tested with it")
    result = cli(ledger, "send", "--out-dir", str(tmp_path), ok=False)
    assert result.exit_code == 1 and "send_pending" in result.output


def test_payment_plan_proposal_letter_from_the_cli(ledger: str, tmp_path: Path) -> None:
    import io

    from pypdf import PdfReader

    first, second = AS_OF + D(10), AS_OF + D(40)
    out = cli(ledger, "plan", "PD", "--instalment", f"{first}:500", "--instalment",
              f"{second}:500", "--as-of", AS_OF.isoformat()).stdout  # fmt: skip
    plan_id = next(word for word in out.split() if word.isdigit())
    pdf = tmp_path / "plan.pdf"
    result = runner.invoke(
        app, ["--db", ledger, "plan-letter", plan_id, "--out", str(pdf), "--lang", "fr",
              "--as-of", AS_OF.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert "Société PD" in text and "500,00" in text
    assert first.strftime("%d/%m/%Y") in text
    missing = runner.invoke(app, ["--db", ledger, "plan-letter", "999", "--out", str(pdf)])
    assert missing.exit_code == 1 and "999" in missing.output
