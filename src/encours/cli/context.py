"""Options shared by every command (database URL, language, output console)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from rich.console import Console

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
