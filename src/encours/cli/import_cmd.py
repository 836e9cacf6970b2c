"""`encours import ...`: customers, invoices, payments (CSV/XLSX + mapping) and FEC."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from encours.cli.context import (
    EXIT_INVALID_INPUT,
    console,
    err_console,
    print_json,
    state,
)
from encours.i18n import _


class Unapplied(str, Enum):
    oldest_first = "oldest-first"
    keep = "keep"


def _run(kind: str, file: Path, mapping: Path | None, skip_invalid: bool, rejects: Path | None,
         unapplied: Unapplied, currency: str, as_json: bool) -> None:  # fmt: skip
    from encours.imports.encoding import EncodingError
    from encours.imports.mapping import MappingError
    from encours.services.imports import ImportRejected, import_file

    if not file.is_file():
        err_console.print(_("File not found: {file}").format(file=file))
        raise typer.Exit(EXIT_INVALID_INPUT)
    labels = {"read": _("Reading and checking"), "write": _("Writing to the ledger"),
              "done": _("Done")}  # fmt: skip
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task(labels["read"], total=None)

            def step(name: str) -> None:
                progress.update(task, description=f"{file.name}: {labels[name]}")

            report = import_file(
                file, kind, db_url=state.db_url, mapping_path=mapping,
                skip_invalid=skip_invalid, rejects_path=rejects,
                unapplied="keep" if unapplied == Unapplied.keep else "oldest_first",
                currency=currency, progress=step,
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
    import_app = typer.Typer(help="Import customers, invoices, payments or a FEC file.",
                             no_args_is_help=True)  # fmt: skip

    def make(kind: str, doc: str):  # noqa: ANN202
        def command(
            file: Path = typer.Argument(..., help="CSV or XLSX file."),
            mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping (TOML)."),
            skip_invalid: bool = typer.Option(
                False, "--skip-invalid", help="Import the good rows, write the rejects."
            ),
            rejects: Path | None = typer.Option(None, "--rejects", help="CSV of rejected rows."),
            unapplied: Unapplied = typer.Option(
                Unapplied.oldest_first, "--unapplied", help="Payments without invoice number."
            ),
            currency: str = typer.Option("EUR", "--currency", help="Default currency."),
            as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        ) -> None:
            _run(kind, file, mapping, skip_invalid, rejects, unapplied, currency, as_json)

        command.__doc__ = doc
        return command

    import_app.command("customers")(make("customers", "Import customers (CSV or XLSX)."))
    import_app.command("invoices")(make("invoices", "Import invoices and credit notes."))
    import_app.command("payments")(make("payments", "Import payments and allocate them."))

    @import_app.command("fec")
    def fec(
        file: Path = typer.Argument(..., help="FEC file (| or tab separated)."),
        skip_invalid: bool = typer.Option(False, "--skip-invalid"),
        rejects: Path | None = typer.Option(None, "--rejects"),
        currency: str = typer.Option("EUR", "--currency", help="Accounting currency."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Import a French FEC (Fichier des Écritures Comptables)."""
        _run("fec", file, None, skip_invalid, rejects, Unapplied.oldest_first, currency, as_json)

    app.add_typer(import_app, name="import")
