"""`encours demo`: a realistic portfolio, imported and analysed, in one command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from encours.cli.context import console, parse_as_of, state
from encours.i18n import _


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        customers: int = typer.Option(2000, "--customers"),
        invoices: int = typer.Option(50000, "--invoices"),
        seed: int = typer.Option(42, "--seed"),
        as_of: str = typer.Option(None, "--as-of", help="Demo day (default today)."),
        data_dir: Path = typer.Option(Path("demo"), "--dir", help="Where the CSV files go."),
    ) -> None:
        """Generate a portfolio, import it into the database and show its position."""
        from encours.generate import generate_portfolio
        from encours.services.demo import import_demo, summary

        day = parse_as_of(as_of)
        with console.status(_("Generating {n} invoices for {c} customers...").format(
                n=invoices, c=customers)):  # fmt: skip
            generate_portfolio(data_dir, customers=customers, invoices=invoices, seed=seed,
                               end=day)  # fmt: skip
        with console.status(_("Importing into {db}...").format(db=state.db_url or "encours.db")):
            reports = import_demo(data_dir, state.db_url, day)
        for report in reports:
            console.print(_("{file}: {inserted} new, {updated} updated, {unchanged} unchanged")
                          .format(file=Path(report.source).name, inserted=report.inserted,
                                  updated=report.updated, unchanged=report.unchanged))  # fmt: skip
        show_summary(summary(day, state.db_url), day)


def show_summary(data: dict, day: dt.date) -> None:
    kpis = Table(title=_("Portfolio as of {day}").format(day=day))
    kpis.add_column(_("indicator"))
    kpis.add_column(_("value"), justify="right")
    for label, value in data["kpis"]:
        kpis.add_row(label, value)
    console.print(kpis)
    aging = Table(title=_("Aging"))
    for i, col in enumerate(data["aging_columns"]):
        aging.add_column(col, justify="left" if i == 0 else "right")
    for row in data["aging_rows"]:
        aging.add_row(*row)
    console.print(aging)
    top = Table(title=_("Top exposures"))
    for col in data["top_columns"]:
        top.add_column(col)
    for row in data["top_rows"]:
        top.add_row(*row)
    console.print(top)
    console.print(Panel(_("Next: encours report customers --as-of {day}").format(day=day)))
