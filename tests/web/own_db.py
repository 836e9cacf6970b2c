"""Helpers for web tests that send mail: a real SMTP server on loopback. (A portfolio of
their own, for tests that change data: `conftest.portfolio_database`.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller


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
