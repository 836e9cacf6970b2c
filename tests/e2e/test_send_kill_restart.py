"""Kill `encours outbox send` (SIGKILL) in the middle of a batch, restart it: the SMTP
server receives every message exactly once (each Message-ID once, no message lost).

The sender is a separate process running the CLI's `main()` (`encours outbox send`);
the server is a real aiosmtpd on the loopback whose handler can hold a command until the
client dies: the sender is killed while the server holds MAIL FROM or the data of a
message (the moments a sender spends its time in), deterministically, not after a delay.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import policy
from pathlib import Path

import polars as pl
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from encours.collections.outbox import send_pending
from encours.collections.smtp import SmtpSettings
from encours.imports.canonical import CUSTOMER_SCHEMA, DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication
from encours.store.schema import Customer

AS_OF = dt.date(2024, 8, 30)
COMMS = Communication.__table__
MESSAGES = 4


class HoldingServer:
    """Accepts every message, except that it can hold the n-th MAIL or DATA command until
    the client disconnects (aiosmtpd then cancels the handler: nothing is accepted)."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.counts = {"MAIL": 0, "DATA": 0}
        self.hold: tuple[str, int] | None = None
        self.holding = threading.Event()

    async def _maybe_hold(self, verb: str) -> None:
        self.counts[verb] += 1
        if self.hold == (verb, self.counts[verb]):
            self.holding.set()
            for _ in range(1200):  # until cancelled by the client's death (60 s at most)
                await asyncio.sleep(0.05)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: ANN001, ANN201
        await self._maybe_hold("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        await self._maybe_hold("DATA")
        self.received.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def server() -> Iterator[tuple[HoldingServer, int]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = HoldingServer()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def seed(url: str) -> list[int]:
    customers = [{"customer_id": f"K{i}", "name": f"Client {i} SAS"} for i in range(MESSAGES)]
    docs = [
        {"invoice_number": f"FA-{i:04d}", "customer_id": f"K{i}", "issue_date": dt.date(2024, 6, 1),
         "due_date": dt.date(2024, 7, 1), "amount_minor": 1_000_00 + i, "currency": "EUR"}
        for i in range(MESSAGES)
    ]  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("c.csv", customers=_frame(customers, CUSTOMER_SCHEMA)),
                   kind="customers")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=_frame(docs, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
    ids = []
    with unit_of_work(url) as conn:
        customer_ids = dict(conn.execute(select(Customer.code, Customer.id)).all())
        for i in range(MESSAGES):
            ids.append(conn.execute(insert(COMMS).values(
                customer_id=customer_ids[f"K{i}"], as_of=AS_OF, policy_code="standard",
                level_code="L1", channel="email", language="fr", status="approved",
                to_address=f"compta@client{i}.example", subject=f"Relance FA-{i:04d}",
                body_text=f"Facture FA-{i:04d} en retard", body_html=None,
            ).returning(COMMS.c.id)).scalar_one())  # fmt: skip
    return ids


def start_sender(db_url: str, port: int, out: Path) -> subprocess.Popen:
    """A new process running `encours outbox send` through the CLI's entry point."""
    env = {**os.environ, "ENCOURS_SMTP_HOST": "127.0.0.1", "ENCOURS_SMTP_PORT": str(port),
           "ENCOURS_MAIL_FROM": "relances@creditor.example", "ENCOURS_LANG": "en"}  # fmt: skip
    env.pop("ENCOURS_DB", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from encours.cli.app import main; main()", "--db", db_url,
         "outbox", "send", "--as-of", AS_OF.isoformat(), "--out", str(out), "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def kill_when_held(proc: subprocess.Popen, handler: HoldingServer, hold: tuple[str, int]) -> None:
    handler.holding.clear()
    handler.hold = hold
    if not handler.holding.wait(120):
        proc.kill()
        pytest.fail(f"the sender never reached {hold}: {proc.communicate()[1].decode()}")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    handler.hold = None


def statuses(url: str) -> list[tuple[int, str, str | None, int]]:
    with unit_of_work(url) as conn:
        return [tuple(r) for r in conn.execute(
            select(COMMS.c.id, COMMS.c.status, COMMS.c.message_id, COMMS.c.attempts)
            .order_by(COMMS.c.id))]  # fmt: skip


def test_kill_mid_batch_then_restart_delivers_each_message_exactly_once(
    db_url: str, tmp_path: Path, server: tuple[HoldingServer, int]
) -> None:
    handler, port = server
    seed(db_url)

    # Run 1: killed while the server holds the data of the 2nd message.
    kill_when_held(start_sender(db_url, port, tmp_path), handler, ("DATA", 2))
    after_first = statuses(db_url)
    assert [s for _, s, _, _ in after_first] == ["sent", "sending", "approved", "approved"]
    assert len(handler.received) == 1
    interrupted_id = after_first[1][2]
    assert interrupted_id  # the Message-ID was recorded before the SMTP transaction

    # Run 2: resends the 2nd (same Message-ID), killed at MAIL FROM of the 3rd.
    kill_when_held(start_sender(db_url, port, tmp_path), handler, ("MAIL", 4))
    assert [s for _, s, _, _ in statuses(db_url)] == ["sent", "sent", "sending", "approved"]

    # Run 3: completes.
    proc = start_sender(db_url, port, tmp_path)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()

    final = statuses(db_url)
    assert all(status == "sent" for _, status, _, _ in final)
    received_ids = [str(m["Message-ID"]).strip() for m in handler.received]
    assert len(received_ids) == MESSAGES
    assert len(set(received_ids)) == MESSAGES
    assert sorted(received_ids) == sorted(mid for _, _, mid, _ in final)
    assert interrupted_id in received_ids
    assert sorted(str(m["To"]) for m in handler.received) == [
        f"compta@client{i}.example" for i in range(MESSAGES)
    ]
    assert [attempts for *_, attempts in final] == [1, 2, 2, 1]

    # A new run sends nothing.
    settings = SmtpSettings(host="127.0.0.1", port=port, mail_from="relances@creditor.example")
    report = send_pending(db_url, AS_OF, tmp_path, settings)
    assert report.emails_sent == 0 and len(handler.received) == MESSAGES
