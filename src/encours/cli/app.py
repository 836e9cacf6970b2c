"""The `encours` command."""

from __future__ import annotations

import importlib
from typing import Any, NoReturn

import typer
from typer import rich_utils
from typer.core import TyperGroup

from encours import __version__
from encours.cli.context import state
from encours.company import CompanyProfileError
from encours.i18n import N_, _, gettext, set_language

# Errors in the settings read from the environment: a message and exit code 1.
CONFIGURATION_ERRORS: tuple[type[Exception], ...] = (CompanyProfileError,)

# The help texts of the commands are English msgids marked with `N_()`: Typer reads them when
# the modules are imported, before `--lang` is parsed, so they are translated in place, on the
# Click objects, once the language is known (see `translate_help`).
_TYPER_LABELS = {  # Typer's own labels of the help screens (it reads them from these globals)
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "ABORTED_TEXT": N_("Aborted."),
    "DEFAULT_STRING": N_("[default: {}]"),
    "ENVVAR_STRING": N_("[env var: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
_HELP_OPTION = N_("Show this message and exit.")  # Click's; translated on the option


def _translate_attributes(obj: object, names: tuple[str, ...]) -> None:
    """Set each attribute to the translation of its original msgid (kept on first call)."""
    msgids = obj.__dict__.setdefault("_encours_msgids", {})
    for name in names:
        if name not in msgids:
            msgids[name] = getattr(obj, name, None)
        msgid = msgids[name]
        if isinstance(msgid, str) and msgid:
            setattr(obj, name, gettext(msgid))


def translate_help(command: Any, ctx: typer.Context) -> None:
    """Translate the help texts of a command and of its subcommands into the current
    language, in place (idempotent: the English msgids stay on the objects)."""
    _translate_attributes(command, ("help", "short_help", "epilog"))
    help_option = command.get_help_option(ctx)  # created now, and cached by Click
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        _translate_attributes(param, ("help",))
    for sub in getattr(command, "commands", {}).values():
        translate_help(sub, ctx)
    if command is ctx.find_root().command:
        for name, msgid in _TYPER_LABELS.items():
            setattr(rich_utils, name, gettext(msgid))


class TranslatedGroup(TyperGroup):
    """The root group: its own help screen (`encours --help`, `encours`) may come before the
    callback that sets the language, so it translates the tree when it formats it."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        translate_help(self, ctx)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:  # noqa: ANN401
        """Configuration errors (a bad ENCOURS_IBAN, a company not configured) end the
        command with a message and exit code 1, not a traceback."""
        try:
            return super().invoke(ctx)
        except CONFIGURATION_ERRORS as exc:
            _configuration_error(exc)


def _configuration_error(exc: Exception) -> NoReturn:
    from rich.markup import escape

    from encours.cli.context import EXIT_INVALID_INPUT, err_console

    err_console.print(
        "[red]" + escape(_("Configuration error: {error}").format(error=exc)) + "[/red]"
    )
    raise typer.Exit(EXIT_INVALID_INPUT)


def _set_language_early(ctx: typer.Context, value: str | None) -> str | None:
    """`--lang` is eager: `encours --lang en --help` speaks English."""
    set_language(value)
    translate_help(ctx.find_root().command, ctx)
    return value


app = typer.Typer(
    name="encours",
    cls=TranslatedGroup,
    help=N_("encours: customer credit risk and receivables collection."),
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
    "encours.cli.insolvency_cmd",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"encours {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", envvar="ENCOURS_DB", help=N_("Database URL (default sqlite:///encours.db).")
    ),
    lang: str | None = typer.Option(
        None,
        "--lang",
        envvar="ENCOURS_LANG",
        help=N_("Language of messages: fr or en."),
        is_eager=True,
        callback=_set_language_early,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help=N_("Show the version and exit.")
    ),
) -> None:
    state.db_url = db
    state.lang = lang
    set_language(lang)
    translate_help(ctx.find_root().command, ctx)  # before a subcommand prints its --help


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    set_language(None)
    try:
        app()
    except CONFIGURATION_ERRORS as exc:  # raised outside a command (e.g. while registering)
        try:
            _configuration_error(exc)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None


__all__ = ["app", "main", "_"]
