"""`encours import ...`: customers, invoices, payments (CSV/XLSX + mapping) and FEC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from encours.cli.context import (
    EXIT_INVALID_INPUT,
    console,
    err_console,
    print_json,
    state,
)
from encours.i18n import N_, _

# The progress bar is shown for files from this size on (smaller ones take a second), and
# only when stderr is a terminal (never in pipes, logs or tests).
PROGRESS_MIN_BYTES = 2_000_000


class Unapplied(str, Enum):
    oldest_first = "oldest-first"
    keep = "keep"


if TYPE_CHECKING:
    from encours.services.imports import ImportKind


def show_progress(file: Path, as_json: bool) -> bool:
    """Whether `encours import` draws its progress bar for this file."""
    return (
        not as_json
        and err_console.is_terminal
        and not err_console.is_dumb_terminal
        and file.stat().st_size >= PROGRESS_MIN_BYTES
    )


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A `progress(stage, done, total)` callback for import_file, drawing one Rich bar per
    stage on stderr (rows done of the file's data rows); a no-op when not `enabled`."""
    if not enabled:
        yield lambda _stage, _done, _total: None
        return
    labels = {"parsing": _("Parsing"), "validating": _("Validating"), "writing": _("Writing")}
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(_("rows")),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield update


def _run(
    kind: ImportKind,
    file: Path,
    mapping: Path | None,
    skip_invalid: bool,
    rejects: Path | None,
    unapplied: Unapplied,
    currency: str,
    as_json: bool,
) -> None:
    from encours.imports.encoding import EncodingError
    from encours.imports.mapping import MappingError
    from encours.services.imports import ImportRejected, import_file

    if not file.is_file():
        err_console.print(_("File not found: {file}").format(file=file))
        raise typer.Exit(EXIT_INVALID_INPUT)
    try:
        with progress_bar(show_progress(file, as_json)) as progress:
            report = import_file(
                file, kind, db_url=state.db_url, mapping_path=mapping,
                skip_invalid=skip_invalid, rejects_path=rejects,
                unapplied="keep" if unapplied == Unapplied.keep else "oldest_first",
                currency=currency, progress=progress,
            )  # fmt: skip
    except ImportRejected as exc:
        if as_json:
            print_json({"status": "rejected", "errors": [str(e) for e in exc.errors]})
        else:
            message = _("{file}: rejected, nothing was imported ({n} error(s)):")
            typer.echo(message.format(file=file, n=len(exc.errors)), err=True)
            for error in exc.errors:
                typer.echo(f"  {error}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None
    except (MappingError, EncodingError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None
    if as_json:
        print_json({"status": "ok", **report.as_dict()})
        return
    console.print(
        _("{file}: {inserted} new, {updated} updated, {unchanged} unchanged, "
          "{rejected} rejected").format(
            file=file.name, inserted=report.inserted, updated=report.updated,
            unchanged=report.unchanged, rejected=report.rejected)
    )  # fmt: skip
    if report.errors:
        out = rejects or file.with_name(file.name + ".rejects.csv")
        err_console.print(_("Rejected rows written to {out}").format(out=out))


def register(app: typer.Typer) -> None:
    # --help texts are English msgids marked with N_(): cli/app.py translates them in place
    # once the language is known.
    import_app = typer.Typer(help=N_("Import customers, invoices, payments or a FEC file."),
                             no_args_is_help=True)  # fmt: skip

    def make(kind: ImportKind):  # noqa: ANN202
        def command(
            file: Path = typer.Argument(..., help=N_("CSV or XLSX file.")),
            mapping: Path | None = typer.Option(
                None, "--mapping", help=N_("Column mapping (TOML).")
            ),
            skip_invalid: bool = typer.Option(
                False, "--skip-invalid", help=N_("Import the good rows, write the rejects.")
            ),
            rejects: Path | None = typer.Option(
                None, "--rejects", help=N_("CSV of rejected rows.")
            ),
            unapplied: Unapplied = typer.Option(
                Unapplied.oldest_first, "--unapplied", help=N_("Payments without invoice number.")
            ),
            currency: str = typer.Option("EUR", "--currency", help=N_("Default currency.")),
            as_json: bool = typer.Option(False, "--json", help=N_("Print the report as JSON.")),
        ) -> None:
            _run(kind, file, mapping, skip_invalid, rejects, unapplied, currency, as_json)

        return command

    import_app.command("customers", help=N_("Import customers (CSV or XLSX)."))(make("customers"))
    import_app.command("invoices", help=N_("Import invoices and credit notes."))(make("invoices"))
    import_app.command("payments", help=N_("Import payments and allocate them."))(make("payments"))

    @import_app.command("fec", help=N_("Import a French FEC (Fichier des Écritures Comptables)."))
    def fec(
        file: Path = typer.Argument(..., help=N_("FEC file (| or tab separated).")),
        skip_invalid: bool = typer.Option(
            False, "--skip-invalid", help=N_("Import the good rows, write the rejects.")
        ),
        rejects: Path | None = typer.Option(None, "--rejects", help=N_("CSV of rejected rows.")),
        currency: str = typer.Option("EUR", "--currency", help=N_("Accounting currency.")),
        as_json: bool = typer.Option(False, "--json", help=N_("Print the report as JSON.")),
    ) -> None:
        _run("fec", file, None, skip_invalid, rejects, Unapplied.oldest_first, currency, as_json)

    app.add_typer(import_app, name="import")
