"""The `encours` command."""

from __future__ import annotations

import importlib

import typer

from encours import __version__
from encours.cli.context import state
from encours.i18n import _, set_language

app = typer.Typer(
    name="encours",
    help="encours: customer credit risk and receivables collection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module exposes `register(app)`; one module per group of commands.
COMMAND_MODULES = [
    "encours.cli.db_cmd",
    "encours.cli.import_cmd",
    "encours.cli.report_cmd",
    "encours.cli.generate_cmd",
    "encours.cli.demo_cmd",
    "encours.cli.penalties_cmd",
    "encours.cli.dunning_cmd",
    "encours.cli.documents_cmd",
    "encours.cli.risk_cmd",
    "encours.cli.model_cmd",
    "encours.cli.web_cmd",
    "encours.cli.monitor_cmd",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"encours {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    db: str | None = typer.Option(
        None, "--db", envvar="ENCOURS_DB", help="Database URL (default sqlite:///encours.db)."
    ),
    lang: str | None = typer.Option(
        None, "--lang", envvar="ENCOURS_LANG", help="Language of messages: fr or en."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    state.db_url = db
    state.lang = lang
    set_language(lang)


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    set_language(None)
    app()


__all__ = ["app", "main", "_"]
