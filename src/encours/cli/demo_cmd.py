"""`encours demo`: a realistic portfolio, imported and analysed, in one command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from encours.cli.context import console, parse_as_of, state
from encours.i18n import N_, _


def register(app: typer.Typer) -> None:
    @app.command(
        "demo",
        help=N_("Generate a portfolio, import it, score it, run dunning and serve the dashboard."),
    )
    def demo(
        customers: int = typer.Option(2000, "--customers", help=N_("Number of customers.")),
        invoices: int = typer.Option(
            50000, "--invoices", help=N_("Number of invoices (credit notes come on top).")
        ),
        seed: int = typer.Option(42, "--seed", help=N_("Random seed: same seed, same files.")),
        as_of: str = typer.Option(None, "--as-of", help=N_("Demo day (default today).")),
        data_dir: Path = typer.Option(Path("demo"), "--dir", help=N_("Where the CSV files go.")),
        serve: bool = typer.Option(True, "--serve/--no-serve", help=N_("Serve the dashboard.")),
        host: str = typer.Option(
            "127.0.0.1", "--host", help=N_("Address the dashboard listens on.")
        ),
        port: int = typer.Option(8000, "--port", help=N_("Port of the dashboard.")),
    ) -> None:
        from encours.services.demo import use_demo_company

        with use_demo_company() as demo_values:  # the environment is restored afterwards
            if demo_values:
                console.print(_("Demo company: fictitious creditor data (set "
                                "ENCOURS_COMPANY_NAME, ENCOURS_IBAN and ENCOURS_COMPANY_SIREN "
                                "for yours)."))  # fmt: skip
            run_demo(customers, invoices, seed, as_of, data_dir, serve, host, port)


def run_demo(customers: int, invoices: int, seed: int, as_of: str | None, data_dir: Path,
             serve: bool, host: str, port: int) -> None:  # fmt: skip
    """Generate, import, summarise, score, dun, then serve the dashboard (`encours demo`)."""
    from encours.generate import generate_portfolio
    from encours.services.demo import import_demo, score_and_dun, summary

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
    with console.status(_("Scoring customers, running dunning and monitoring...")):
        outcome = score_and_dun(state.db_url, day)
    show_outcome(outcome)
    if serve:
        from encours.web import ensure_demo_user
        from encours.web import serve as run_server

        run_server(state.db_url, host, port, ensure_demo_user(state.db_url))


def show_outcome(outcome: dict) -> None:
    classes = Table(title=_("Risk classes"))
    classes.add_column(_("class"))
    classes.add_column(_("customers"), justify="right")
    for name, count in outcome["classes"].items():
        classes.add_row(str(name), str(count))
    console.print(classes)
    metrics = outcome["model"]
    if metrics:
        console.print(_("Payment model trained: {metrics}").format(
            metrics=", ".join(f"{k}={v}" for k, v in metrics.items()
                              if isinstance(v, int | float))))  # fmt: skip
    dunning = Table(title=_("Dunning run: messages created"))
    dunning.add_column(_("level (channel, status)"))
    dunning.add_column(_("customers"), justify="right")
    for key, count in outcome["dunning"].items():
        dunning.add_row(key, str(count))
    console.print(dunning)
    alerts = Table(title=_("Open alerts"))
    alerts.add_column(_("kind"))
    alerts.add_column(_("alerts"), justify="right")
    for kind, count in outcome["alerts"].items():
        alerts.add_row(kind, str(count))
    console.print(alerts)
    for error in outcome["dunning_errors"]:
        console.print(f"[red]{error}[/red]")


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
