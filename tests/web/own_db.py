"""Helpers for web tests that need a portfolio of their own (they change data that the
session's portfolio must keep): the same generated portfolio and users as conftest, in a
fresh SQLite file or PostgreSQL database; a real SMTP server on loopback."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from conftest import PG_ADMIN_URL, _populated


def own_portfolio(tmp: Path, prefix: str) -> Iterator[str]:
    if not PG_ADMIN_URL.startswith("postgresql"):
        yield from _populated(f"sqlite:///{tmp / 'encours.db'}", tmp)
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield from _populated(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", tmp)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.messages.append(envelope.content)
        return "250 OK"


def smtp_environment(letters: Path) -> Iterator[Inbox]:
    """An SMTP server on loopback, and the environment `send_pending` reads."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCOURS_SMTP_HOST", "127.0.0.1")
        mp.setenv("ENCOURS_SMTP_PORT", str(port))
        mp.setenv("ENCOURS_SMTP_TIMEOUT", "5")
        mp.setenv("ENCOURS_LETTERS_DIR", str(letters))
        try:
            yield inbox
        finally:
            controller.stop()
