"""The outbox delivers approved communications to a real SMTP server on the loopback
(aiosmtpd): exactly once, with the statement of account attached, retries and failures."""

from __future__ import annotations

import datetime as dt
import email
import io
import socket
from collections.abc import Iterator
from email import policy
from pathlib import Path

import polars as pl
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlalchemy import func, insert, select, update

from encours.collections.outbox import send_pending
from encours.collections.smtp import SmtpSettings
from encours.imports.canonical import (
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    CanonicalBatch,
    conform,
)
from encours.imports.load import load_batch
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication, TimelineEvent
from encours.store.schema import AuditEntry, Customer

D = dt.date
AS_OF = D(2024, 8, 30)
COMMS = Communication.__table__
NOW = dt.datetime(2024, 8, 30, 9, 0)


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def _inv(number: str, customer: str, issue: dt.date, due: dt.date, amount_minor: int) -> dict:
    return {"invoice_number": number, "customer_id": customer, "issue_date": issue,
            "due_date": due, "amount_minor": amount_minor, "currency": "EUR"}  # fmt: skip


def seed_ledger(url: str) -> dict[str, int]:
    customers = [
        {"customer_id": "C1", "name": "Alpha Industries SAS", "country": "FR"},
        {"customer_id": "C2", "name": "Beta Trading Ltd", "country": "GB"},
        {"customer_id": "C3", "name": "Gamma Logistique SARL", "country": "FR"},
    ]
    docs = [
        _inv("FA-2024-0101", "C1", D(2024, 5, 1), D(2024, 5, 31), 12_000_00),
        _inv("FA-2024-0102", "C1", D(2024, 6, 15), D(2024, 7, 15), 3_456_78),
        _inv("FA-2024-0201", "C2", D(2024, 6, 1), D(2024, 7, 1), 5_000_00),
        _inv("FA-2024-0301", "C3", D(2024, 6, 1), D(2024, 7, 1), 777_00),
    ]
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("c.csv", customers=_frame(customers, CUSTOMER_SCHEMA)),
                   kind="customers")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=_frame(docs, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def add_communication(url: str, customer_id: int, channel: str = "email", **values) -> int:  # noqa: ANN003
    row = {
        "customer_id": customer_id, "as_of": AS_OF, "policy_code": "standard",
        "level_code": values.pop("level_code", f"L{channel}"), "channel": channel,
        "language": "fr", "status": "approved", "subject": "Relance factures impayées",
        "body_text": "Factures en retard : FA-2024-0101, FA-2024-0102",
        "body_html": "<html><body><p>Factures en retard : FA-2024-0101, FA-2024-0102</p>"
                     "</body></html>",
        "total_due_minor": 15_456_78, "currency": "EUR", **values,
    }  # fmt: skip
    with unit_of_work(url) as conn:
        return conn.execute(insert(COMMS).values(**row).returning(COMMS.c.id)).scalar_one()


def comm(url: str, communication_id: int) -> dict:
    with unit_of_work(url) as conn:
        return dict(
            conn.execute(select(COMMS).where(COMMS.c.id == communication_id)).mappings().one()
        )


class Recorder:
    """An SMTP server's handler: records every accepted message; scripted replies."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.data_replies: list[str] = []  # next DATA replies (e.g. a 451) before accepting
        self.reject_rcpt: dict[str, str] = {}  # address -> reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201
        if address in self.reject_rcpt:
            return self.reject_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
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
    settings = SmtpSettings(host="127.0.0.1", port=port, mail_from="relances@creditor.example",
                            timeout=10, max_attempts=3, backoff_seconds=600)  # fmt: skip
    try:
        yield recorder, settings
    finally:
        controller.stop()


def msgid(message: email.message.EmailMessage) -> str:
    return str(message["Message-ID"]).strip()  # a long header may come back folded


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    """Without any kind of space (babel uses narrow no-break spaces in French amounts)."""
    return "".join(text.split()).replace("\u202f", "").replace("\xa0", "")


def test_send_delivers_each_email_once_with_the_statement(
    db_url: str, tmp_path: Path, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    recorder, settings = smtp_server
    ids = seed_ledger(db_url)
    first = add_communication(db_url, ids["C1"], to_address="compta@alpha.example")
    second = add_communication(
        db_url,
        ids["C2"],
        to_address="ap@beta.example",
        language="en",
        subject="Overdue invoice FA-2024-0201",
        body_text="Invoice FA-2024-0201 is overdue",
        body_html=None,
    )
    draft = add_communication(db_url, ids["C3"], to_address="x@gamma.example", status="draft")

    report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)

    assert report.emails_sent == 2 and report.emails_failed == 0
    by_to = {m["To"]: m for m in recorder.messages}
    assert sorted(by_to) == ["ap@beta.example", "compta@alpha.example"]
    alpha = by_to["compta@alpha.example"]
    assert alpha["Subject"] == "Relance factures impayées"
    assert alpha["From"] == "relances@creditor.example"
    body = alpha.get_body(("plain",)).get_content()
    assert "FA-2024-0101" in body and "FA-2024-0102" in body
    assert "FA-2024-0101" in alpha.get_body(("html",)).get_content()
    attachments = list(alpha.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["releve-de-compte-C1-2024-08-30.pdf"]
    text = pdf_text(attachments[0].get_content())
    assert "Relevé de compte" in text and "Alpha Industries SAS" in text
    assert "FA-2024-0101" in text and "FA-2024-0102" in text
    assert "15456,78€" in squash(text)  # the balance
    beta = by_to["ap@beta.example"]
    beta_pdf = pdf_text(next(beta.iter_attachments()).get_content())
    assert "Statement of account" in beta_pdf and "FA-2024-0201" in beta_pdf

    for communication_id, message in ((first, alpha), (second, beta)):
        row = comm(db_url, communication_id)
        assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
        assert row["message_id"] == msgid(message)
    assert comm(db_url, draft)["status"] == "draft"
    with unit_of_work(db_url) as conn:
        events = conn.execute(select(TimelineEvent.kind, TimelineEvent.ref_id)).all()
        audits = conn.execute(
            select(AuditEntry.action, AuditEntry.entity_key).where(
                AuditEntry.action.like("communication.%")
            )
        ).all()
    assert sorted(e.ref_id for e in events) == sorted([first, second])
    assert sorted(audits) == sorted([("communication.sent", str(first)),
                                     ("communication.sent", str(second))])  # fmt: skip

    again = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)
    assert again.emails_sent == 0 and len(recorder.messages) == 2


def test_temporary_error_is_retried_with_backoff_then_sent(
    db_url: str, tmp_path: Path, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    recorder, settings = smtp_server
    ids = seed_ledger(db_url)
    communication_id = add_communication(db_url, ids["C1"], to_address="compta@alpha.example")
    recorder.data_replies.append("451 4.3.0 Try again later")

    report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)
    assert report.emails_retried_later == 1 and report.emails_sent == 0
    row = comm(db_url, communication_id)
    assert row["status"] == "approved" and row["attempts"] == 1
    assert "451" in row["last_error"]
    assert row["next_attempt_at"] == NOW + dt.timedelta(seconds=600)
    message_id = row["message_id"]
    assert message_id and recorder.messages == []

    # Not due yet: nothing is sent.
    early = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW + dt.timedelta(minutes=5))
    assert early.emails_sent == 0 and recorder.messages == []

    later = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW + dt.timedelta(minutes=10))
    assert later.emails_sent == 1
    row = comm(db_url, communication_id)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["last_error"] is None
    assert [msgid(m) for m in recorder.messages] == [message_id]

    # Backoff doubles and the message fails after max_attempts temporary errors.
    other = add_communication(db_url, ids["C2"], to_address="ap@beta.example")
    recorder.data_replies.extend(["451 busy"] * 3)
    now = NOW
    for attempt in range(1, 4):
        send_pending(db_url, AS_OF, tmp_path, settings, now=now)
        row = comm(db_url, other)
        assert row["attempts"] == attempt
        if attempt < 3:
            assert row["next_attempt_at"] == now + dt.timedelta(seconds=600 * 2 ** (attempt - 1))
            now = row["next_attempt_at"]
    assert row["status"] == "failed" and "gave up after 3 attempts" in row["last_error"]
    assert len(recorder.messages) == 1


def test_permanent_error_fails_and_is_kept(
    db_url: str, tmp_path: Path, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    recorder, settings = smtp_server
    ids = seed_ledger(db_url)
    bad = add_communication(db_url, ids["C1"], to_address="nobody@alpha.example")
    good = add_communication(db_url, ids["C2"], to_address="ap@beta.example")
    no_address = add_communication(db_url, ids["C3"], to_address=None)
    recorder.reject_rcpt["nobody@alpha.example"] = "550 5.1.1 No such user"

    report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)

    assert report.emails_sent == 1 and report.emails_failed == 2
    assert {f["id"] for f in report.failed} == {bad, no_address}
    row = comm(db_url, bad)
    assert row["status"] == "failed" and "550" in row["last_error"] and row["attempts"] == 1
    assert comm(db_url, good)["status"] == "sent"
    assert "no email address" in comm(db_url, no_address)["last_error"]
    with unit_of_work(db_url) as conn:
        failed_audits = conn.execute(
            select(func.count()).where(AuditEntry.action == "communication.failed")
        ).scalar_one()
        failed_events = (
            conn.execute(select(TimelineEvent.summary).where(TimelineEvent.ref_id == bad))
            .scalars()
            .all()
        )
    assert failed_audits == 2 and "550" in failed_events[0]
    assert [m["To"] for m in recorder.messages] == ["ap@beta.example"]

    again = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW + dt.timedelta(days=1))
    assert again.emails_sent == 0 and again.emails_failed == 0
    assert comm(db_url, bad)["status"] == "failed"  # kept for review, never resent
    assert len(recorder.messages) == 1


def test_connection_refused_is_temporary(db_url: str, tmp_path: Path) -> None:
    ids = seed_ledger(db_url)
    communication_id = add_communication(db_url, ids["C1"], to_address="compta@alpha.example")
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), mail_from="r@creditor.example",
                            timeout=5, max_attempts=3, backoff_seconds=60)  # fmt: skip
    report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)
    assert report.emails_retried_later == 1
    row = comm(db_url, communication_id)
    assert row["status"] == "approved" and "connection" in row["last_error"]


def test_interrupted_message_is_resent_with_its_message_id(
    db_url: str, tmp_path: Path, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    """A row left in 'sending' by a killed run is sent again with the SAME Message-ID."""
    recorder, settings = smtp_server
    ids = seed_ledger(db_url)
    communication_id = add_communication(db_url, ids["C1"], to_address="compta@alpha.example")
    with unit_of_work(db_url) as conn:
        conn.execute(
            update(COMMS)
            .where(COMMS.c.id == communication_id)
            .values(status="sending", message_id="<encours.1.crashed@creditor.example>", attempts=1)
        )
    report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)
    assert report.emails_sent == 1 and report.resent_after_interruption == 1
    assert [msgid(m) for m in recorder.messages] == ["<encours.1.crashed@creditor.example>"]
    row = comm(db_url, communication_id)
    assert row["status"] == "sent" and row["attempts"] == 2


def test_letters_go_into_one_print_batch_and_calls_are_marked(
    db_url: str, tmp_path: Path, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    _recorder, settings = smtp_server
    ids = seed_ledger(db_url)
    first = add_communication(db_url, ids["C1"], "letter", subject="Deuxième relance")
    second = add_communication(db_url, ids["C2"], "letter", language="en",
                               subject="Second reminder", body_html=None,
                               body_text="Invoice FA-2024-0201 is overdue.")  # fmt: skip
    call = add_communication(db_url, ids["C3"], "phone", body_html=None)

    report = send_pending(db_url, AS_OF, tmp_path / "print", settings, now=NOW)

    assert report.letters == 2 and report.calls == 1
    batch = Path(report.letter_batch)
    assert batch.parent == tmp_path / "print" and batch.is_file()
    reader = PdfReader(batch)
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) == 2  # one page each, each letter on a new page
    assert "Alpha Industries SAS" in pages[0] and "FA-2024-0101" in pages[0]
    assert "Votre Société SAS" in pages[0] and "Deuxième relance" in pages[0]
    assert "Beta Trading Ltd" in pages[1] and "FA-2024-0201" in pages[1]
    for communication_id in (first, second):
        row = comm(db_url, communication_id)
        assert row["status"] == "sent"  # pointing at its own letter, not at the batch
        own = tmp_path / "print" / "letters" / f"{communication_id}.pdf"
        assert row["document_path"] == str(own)
        assert len(PdfReader(row["document_path"]).pages) == 1
    assert comm(db_url, call)["status"] == "sent"

    again = send_pending(db_url, AS_OF, tmp_path / "print", settings, now=NOW)
    assert again.letters == 0 and again.calls == 0 and again.letter_batch is None


def test_a_message_another_sender_holds_is_left_to_it(
    db_url: str, tmp_path: Path, smtp_server: tuple[Recorder, SmtpSettings]
) -> None:
    """Two senders at once: an email in 'sending' whose sender still runs (a live process
    of this host, or another host within its lease) is not sent again; once that process
    has ended, or the lease is over, it is taken over with its Message-ID."""
    import subprocess
    import sys

    recorder, settings = smtp_server
    ids = seed_ledger(db_url)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        here = f"{socket.gethostname()}:{other.pid}"
        lease = NOW + dt.timedelta(minutes=5)
        held_here = add_communication(db_url, ids["C1"], to_address="a@alpha.example",
                                      status="sending", message_id="<here@creditor.example>",
                                      attempts=1, claimed_by=here, next_attempt_at=lease,
                                      level_code="L1")  # fmt: skip
        held_away = add_communication(db_url, ids["C1"], to_address="b@alpha.example",
                                      status="sending", message_id="<away@creditor.example>",
                                      attempts=1, claimed_by="elsewhere:4242",
                                      next_attempt_at=lease, level_code="L2")  # fmt: skip
        fresh = add_communication(db_url, ids["C1"], to_address="c@alpha.example", level_code="L3")
        report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)
        assert report.emails_sent == 1 and report.held_by_another_sender == 2
        assert [m["To"] for m in recorder.messages] == ["c@alpha.example"]
        assert comm(db_url, fresh)["status"] == "sent"
        assert comm(db_url, held_here)["status"] == comm(db_url, held_away)["status"] == "sending"
    finally:
        other.kill()
        other.wait()
    # the local holder has ended: taken over at once; the remote one: when its lease ends
    report = send_pending(db_url, AS_OF, tmp_path, settings, now=NOW)
    assert report.resent_after_interruption == 1 and report.held_by_another_sender == 1
    assert msgid(recorder.messages[-1]) == "<here@creditor.example>"
    report = send_pending(db_url, AS_OF, tmp_path, settings, now=lease)
    assert report.resent_after_interruption == 1 and report.held_by_another_sender == 0
    assert msgid(recorder.messages[-1]) == "<away@creditor.example>"
    assert len(recorder.messages) == 3
    assert {comm(db_url, i)["attempts"] for i in (held_here, held_away)} == {2}


def test_two_senders_never_take_over_the_same_email(db_url: str) -> None:
    """The take-over is a compare-and-swap on the claim: with the same view of an email
    left by a dead sender, the first claim wins and the second gets nothing."""
    from encours.collections.outbox import _claim

    ids = seed_ledger(db_url)
    left = add_communication(db_url, ids["C1"], to_address="a@alpha.example", status="sending",
                             message_id="<left@creditor.example>", attempts=1,
                             claimed_by="elsewhere:1", next_attempt_at=NOW)  # fmt: skip
    row = comm(db_url, left)
    settings = SmtpSettings(host="127.0.0.1", port=25, mail_from="relances@creditor.example")
    with unit_of_work(db_url) as conn:
        first = _claim(conn, row, settings, NOW)
    with unit_of_work(db_url) as conn:
        second = _claim(conn, row, settings, NOW)
    assert first is not None and first["message_id"] == "<left@creditor.example>"
    assert second is None
    assert comm(db_url, left)["attempts"] == 2


@pytest.fixture
def tls_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, installed by scripts/test.sh)."""
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_implicit_tls_on_an_smtps_port(
    db_url: str, tmp_path: Path, tls_certificate: tuple[Path, Path]
) -> None:
    """ENCOURS_SMTP_SSL: TLS from the first byte (port 465 style), the server's certificate
    checked against ENCOURS_SMTP_CAFILE; an untrusted certificate is a temporary error
    (the message is kept for a retry, nothing is lost)."""
    import ssl

    cert, key = tls_certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    recorder, port = Recorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port,
                            ssl_context=server_context)  # fmt: skip
    controller.start()
    try:
        env = {"ENCOURS_SMTP_HOST": "127.0.0.1", "ENCOURS_SMTP_PORT": str(port),
               "ENCOURS_SMTP_SSL": "1", "ENCOURS_MAIL_FROM": "relances@creditor.example",
               "ENCOURS_SMTP_TIMEOUT": "10"}  # fmt: skip
        assert SmtpSettings.from_env({"ENCOURS_SMTP_SSL": "oui"}).port == 465
        ids = seed_ledger(db_url)
        first = add_communication(db_url, ids["C1"], to_address="compta@alpha.example")
        untrusted = SmtpSettings.from_env(env)  # the system's CAs only
        report = send_pending(db_url, AS_OF, tmp_path, untrusted, now=NOW)
        assert report.emails_sent == 0 and report.emails_retried_later == 1
        assert "certificate" in comm(db_url, first)["last_error"].lower()
        trusted = SmtpSettings.from_env({**env, "ENCOURS_SMTP_CAFILE": str(cert)})
        later = NOW + dt.timedelta(days=1)
        report = send_pending(db_url, AS_OF, tmp_path, trusted, now=later)
        assert report.emails_sent == 1
        assert [m["To"] for m in recorder.messages] == ["compta@alpha.example"]
        assert comm(db_url, first)["status"] == "sent"
    finally:
        controller.stop()
