"""`encours generate`: write a synthetic portfolio (customers, invoices, payments CSV)."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

import typer
from rich.table import Table

from encours.cli.context import console, fail_usage, print_json
from encours.i18n import N_, _, current_language


def _parse_end(value: str | None) -> dt.date:
    if value in (None, "", "today"):
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail_usage(_("--end: {value!r} is not a date (expected YYYY-MM-DD)").format(value=value))


def generate(
    customers: int = typer.Option(1_000, "--customers", min=1, help=N_("Number of customers.")),
    invoices: int = typer.Option(
        20_000, "--invoices", min=0, help=N_("Number of invoices (credit notes come on top).")
    ),
    seed: int = typer.Option(0, "--seed", min=0, help=N_("Random seed: same seed, same files.")),
    out: Path = typer.Option(..., "--out", help=N_("Output directory (created if needed).")),
    end: str | None = typer.Option(
        None, "--end", help=N_("Last issue/payment date, YYYY-MM-DD (default: today).")
    ),
    months: int = typer.Option(
        24, "--months", min=1, max=600, help=N_("Months of history before the end date.")
    ),
    json_output: bool = typer.Option(False, "--json", help=N_("Print the summary as JSON.")),
) -> None:
    """Generate a synthetic receivables portfolio in the canonical CSV formats."""
    from encours.generate import generate_portfolio  # numpy/polars only when needed

    end_date = _parse_end(end)
    if out.exists() and not out.is_dir():
        fail_usage(_("--out: {path} exists and is not a directory").format(path=out))
    started = time.perf_counter()
    summary = generate_portfolio(
        out, customers=customers, invoices=invoices, seed=seed, end=end_date, months=months
    )
    elapsed = round(time.perf_counter() - started, 2)

    if json_output:
        print_json({**summary.to_dict(), "elapsed_seconds": elapsed})
        return

    from encours.locale_format import format_count, format_day, format_money
    from encours.money import to_minor

    lang = current_language()

    def count(n: int) -> str:
        return format_count(n, lang)

    def money(amount: Decimal) -> str:
        return format_money(to_minor(amount, summary.currency), summary.currency, lang)

    table = Table(title=_("Synthetic portfolio in {path}").format(path=out), show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        (_("Period"), f"{format_day(summary.start, lang)} → {format_day(summary.end, lang)}"),
        (_("Customers"), count(summary.customers)),
        (_("Invoices"), count(summary.invoices)),
        (_("Credit notes"), count(summary.credit_notes)),
        (_("Payments"), count(summary.payments)),
        (_("Disputed invoices"), count(summary.disputed_invoices)),
        (_("Open invoices"), count(summary.open_invoices)),
        (_("Total invoiced"), money(summary.total_invoiced)),
        (_("Total credited"), money(summary.total_credited)),
        (_("Total paid"), money(summary.total_paid)),
        (_("Outstanding"), money(summary.outstanding)),
        (_("Seed"), str(summary.seed)),
        (_("Time"), f"{elapsed} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    files = ", ".join(str(path) for path in summary.files.values())
    console.print(_("Files: {files}").format(files=files), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
