"""Options shared by every command (database URL, language, output console)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2


@dataclass
class State:
    db_url: str | None = None
    lang: str | None = None


state = State()
console = Console()
err_console = Console(stderr=True)


def parse_as_of(value: str | None) -> dt.date:
    """`--as-of` value: an ISO date, default today."""
    if value in (None, "", "today"):
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail_usage(f"--as-of: {value!r} is not a date (expected YYYY-MM-DD)")


def fail_usage(message: str) -> NoReturn:
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(EXIT_USAGE)


def fail_input(message: str) -> NoReturn:
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(EXIT_INVALID_INPUT)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


def cli_actor() -> str:
    """Who acts, for the audit log: `cli:<user name>` (`cli` where there is none)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


def parse_day(value: str, option: str) -> dt.date:
    """A date option (YYYY-MM-DD); a bad one is invalid input (exit 1)."""
    from encours.i18n import _

    try:
        return dt.date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        fail_input(
            escape(
                _("{option}: {value!r} is not a date (expected YYYY-MM-DD)").format(
                    option=option, value=value
                )
            )
        )
