"""The daily digest of alerts, delivered to a real SMTP server on the loopback (aiosmtpd):
one email per assignee, in the assignee's language (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import email
import socket
from collections.abc import Iterator
from email import policy

import polars as pl
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select
from typer.testing import CliRunner

from encours import i18n
from encours.cli.app import app
from encours.collections.smtp import SmtpSettings
from encours.imports.canonical import CUSTOMER_SCHEMA, DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.risk.digest import build_digests, recipients_from_env, send_digests
from encours.risk.monitor import Thresholds, run_monitor
from encours.store.alerts_schema import Alert
from encours.store.db import unit_of_work
from encours.store.web_schema import User

D = dt.date
AS_OF = D(2024, 6, 30)
ENV = {
    "ENCOURS_DIGEST_RECIPIENTS": "Alice Martin=alice@example.fr;"
    "Bob Dupont=bob@example.com, bob.backup@example.com",
    "ENCOURS_DIGEST_TO": "credit@example.com",
}


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def seed(url: str) -> None:
    customers = [
        {"customer_id": "A1", "name": "Alpha Industries SAS", "credit_limit_minor": 1_000_00,
         "account_owner": "Alice Martin", "collector": "Bob Dupont"},
        {"customer_id": "B1", "name": "Beta Négoce SARL", "collector": "Bob Dupont"},
        {"customer_id": "B2", "name": "Bravo Transports", "collector": "Bob Dupont"},
        {"customer_id": "N1", "name": "Nobody's Customer"},
    ]  # fmt: skip
    docs = [
        {"invoice_number": "A-1", "customer_id": "A1", "issue_date": D(2024, 6, 20),
         "due_date": D(2024, 7, 20), "amount_minor": 5_000_00, "currency": "EUR"},
        {"invoice_number": "B-1", "customer_id": "B1", "issue_date": D(2023, 5, 30),
         "due_date": D(2024, 6, 29), "amount_minor": 12_000_00, "currency": "EUR"},
        {"invoice_number": "B-2", "customer_id": "B2", "issue_date": D(2023, 5, 30),
         "due_date": D(2024, 6, 29), "amount_minor": 30_000_00, "currency": "EUR"},
        {"invoice_number": "N-1", "customer_id": "N1", "issue_date": D(2023, 5, 30),
         "due_date": D(2024, 6, 29), "amount_minor": 11_000_00, "currency": "EUR"},
    ]  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("c.csv", customers=_frame(customers, CUSTOMER_SCHEMA)),
                   kind="customers")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=_frame(docs, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
        conn.execute(insert(User.__table__).values(
            username="alice", role="credit_manager", password_hash="-",
            owner_name="Alice Martin", language="fr"))  # fmt: skip
        run_monitor(conn, AS_OF, Thresholds())


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, SmtpSettings]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    settings = SmtpSettings(host="127.0.0.1", port=port, mail_from="alertes@creditor.example",
                            timeout=10)  # fmt: skip
    try:
        yield recorder, settings
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _english() -> None:
    i18n.set_language("en")


@pytest.fixture
def ledger(db_url: str) -> str:
    seed(db_url)
    return db_url


def alert_ids(url: str) -> dict[str, int]:
    with unit_of_work(url) as conn:
        rows = conn.execute(select(Alert.id, Alert.details)).all()
    return {details.get("number", "limit"): alert_id for alert_id, details in rows}


def test_recipients_from_the_environment() -> None:
    mapping, default = recipients_from_env(ENV)
    assert mapping == {"Alice Martin": ["alice@example.fr"],
                       "Bob Dupont": ["bob@example.com", "bob.backup@example.com"]}  # fmt: skip
    assert default == ["credit@example.com"]
    assert recipients_from_env({}) == ({}, [])


def test_digest_per_assignee_in_their_language(
    ledger: str, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    recorder, settings = smtp_server
    ids = alert_ids(ledger)
    report = send_digests(ledger, AS_OF, settings=settings, env=ENV)
    assert not report.failed and not report.no_recipient
    assert len(report.sent) == 3 and len(recorder.messages) == 3
    by_to = {m["To"]: (rcpts, m) for rcpts, m in recorder.messages}

    rcpts, alice = by_to["alice@example.fr"]
    assert rcpts == ["alice@example.fr"]
    assert alice["From"] == "alertes@creditor.example"
    assert alice["Subject"] == "[encours] 1 alerte(s) ouverte(s) pour Alice Martin le 2024-06-30"
    body = alice.get_body(("plain",)).get_content()
    assert "Bonjour Alice Martin" in body
    assert f"#{ids['limit']} A1 Alpha Industries SAS" in body
    assert "Limite de crédit dépassée" in body
    assert "5\u202f000,00\xa0€" in body or "5 000,00 €" in body  # French amount
    assert alice["Content-Language"] == "fr"

    rcpts, bob = by_to["bob@example.com, bob.backup@example.com"]
    assert sorted(rcpts) == ["bob.backup@example.com", "bob@example.com"]
    assert bob["Subject"] == "[encours] 2 open alert(s) for Bob Dupont on 2024-06-30"
    body = bob.get_body(("plain",)).get_content()
    lines = body.splitlines()
    b1 = next(line for line in lines if f"#{ids['B-1']} " in line)
    b2 = next(line for line in lines if f"#{ids['B-2']} " in line)
    assert "Beta Négoce SARL" in b1 and "Invoice B-1 of €12,000.00" in b1 and "(new)" in b1
    assert "New overdue invoice" in b2 and "€30,000.00" in b2
    assert "A-1" not in body and "N-1" not in body  # not Bob's

    rcpts, other = by_to["credit@example.com"]
    assert "unassigned" in other["Subject"]
    assert "N-1" in other.get_body(("plain",)).get_content()


def test_acknowledged_alerts_leave_the_digest_and_no_address_is_reported(ledger: str) -> None:
    from encours.risk.monitor import acknowledge

    ids = alert_ids(ledger)
    with unit_of_work(ledger) as conn:
        acknowledge(conn, ids["B-1"], "Paid by transfer today", "bob", AS_OF)
        digests = {d.assignee: d for d in build_digests(conn, AS_OF, env={})}
    assert digests["Bob Dupont"].alert_ids == [ids["B-2"]]
    assert all(d.recipients == [] for d in digests.values())
    report = send_digests(ledger, AS_OF, settings=SmtpSettings(port=1), env={})
    assert sorted(report.no_recipient, key=str) == ["Alice Martin", "Bob Dupont", None]
    assert report.sent == [] and report.failed == []


def test_cli_dry_run_prints_and_send_delivers(
    ledger: str, smtp_server: tuple[Recorder, SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, settings = smtp_server
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ENCOURS_SMTP_HOST", settings.host)
    monkeypatch.setenv("ENCOURS_SMTP_PORT", str(settings.port))
    monkeypatch.setenv("ENCOURS_MAIL_FROM", "alertes@creditor.example")
    runner = CliRunner()
    dry = runner.invoke(app, ["--db", ledger, "alerts", "digest", "--as-of", "2024-06-30",
                              "--dry-run"])  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert "To: bob@example.com, bob.backup@example.com" in dry.output
    assert "Subject: [encours] 2 open alert(s) for Bob Dupont on 2024-06-30" in dry.output
    assert recorder.messages == []
    sent = runner.invoke(app, ["--db", ledger, "alerts", "digest", "--as-of", "2024-06-30"])
    assert sent.exit_code == 0, sent.output
    assert len(recorder.messages) == 3
