"""`encours report ...` and `encours status`: positions and KPIs as of a day."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from enum import Enum
from pathlib import Path

import polars as pl
import typer
from rich.table import Table

from encours.cli.context import console, fail_usage, parse_as_of, print_json, state
from encours.i18n import N_, _


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


AS_OF_HELP = N_(
    "Position date (YYYY-MM-DD, default today): only what is dated on or before counts."
)


def emit(frame: pl.DataFrame, fmt: Format, out: Path | None, title: str, limit: int) -> None:
    """Write a report frame in the requested format, to --out or to the terminal.

    Tables and xlsx sheets are for people: translated headers and metric names; csv and
    json keep the stable English keys."""
    from encours.services.reports import for_humans

    if fmt in (Format.table, Format.xlsx):
        frame = for_humans(frame)
    if fmt == Format.xlsx:
        if out is None:
            fail_usage(_("--format xlsx needs --out FILE.xlsx"))
        write_xlsx(frame, out, title[:31])
        console.print(_("Written {out}").format(out=out))
        return
    if fmt == Format.csv:
        text = frame.write_csv()
    elif fmt == Format.json:
        text = json.dumps(frame.to_dicts(), ensure_ascii=False, indent=2, default=str) + "\n"
    else:
        if out is not None:
            fail_usage(_("--out needs --format csv, json or xlsx"))
        table = Table(title=title, show_lines=False)
        numeric = {c for c, t in frame.schema.items() if t.is_numeric()}
        for col in frame.columns:
            table.add_column(col, justify="right" if col in numeric or _is_amount(frame, col)
                             else "left")  # fmt: skip
        for row in frame.head(limit).iter_rows():
            table.add_row(*["" if v is None else str(v) for v in row])
        console.print(table)
        if frame.height > limit:
            console.print(
                _("... {n} more rows (use --format csv or --limit)").format(n=frame.height - limit)
            )
        return
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(_("Written {out}").format(out=out))


# Text columns that may look like numbers (a customer code "10023") but are not amounts.
_TEXT_COLUMNS = frozenset({"code", "name", "segment", "currency", "metric"})
_DECIMAL_TEXT = re.compile(r"^-?\d+(?:\.(\d+))?$")


def write_xlsx(frame: pl.DataFrame, out: Path, sheet: str) -> None:
    """Write the frame as one sheet whose amounts and KPI values are numeric cells.

    Report amounts are decimal strings: each one becomes a number shown with its own
    decimals (``#,##0.00`` for cents). XLSX cells hold IEEE doubles, so the Decimal ->
    float conversion happens here, at the file boundary only (exact to the cent for any
    amount below 2**53 minor units). Text columns (codes, names) stay text even when they
    look like numbers; any other text (a date in the KPI values) stays text."""
    import xlsxwriter

    from encours.services.reports import label

    text_columns = {label(c) for c in _TEXT_COLUMNS} | _TEXT_COLUMNS
    book = xlsxwriter.Workbook(str(out))
    try:
        ws = book.add_worksheet(sheet)
        bold = book.add_format({"bold": True})
        formats: dict[str, object] = {}

        def number_format(pattern: str) -> object:
            if pattern not in formats:
                formats[pattern] = book.add_format({"num_format": pattern})
            return formats[pattern]

        date_format = number_format("yyyy-mm-dd")
        for c, name in enumerate(frame.columns):
            ws.write_string(0, c, name, bold)
            ws.set_column(c, c, max(12, min(40, len(name) + 2)))
        for c, (name, dtype) in enumerate(frame.schema.items()):
            parse = dtype == pl.String and name not in text_columns
            for r, value in enumerate(frame[name].to_list(), start=1):
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                if isinstance(value, str):
                    match = _DECIMAL_TEXT.match(value.strip()) if parse else None
                    if match is None:
                        ws.write_string(r, c, value)
                        continue
                    scale = len(match.group(1) or "")
                    pattern = "#,##0" + ("." + "0" * scale if scale else "")
                    ws.write_number(r, c, float(Decimal(value)), number_format(pattern))
                elif isinstance(value, bool):
                    ws.write_boolean(r, c, value)
                elif isinstance(value, dt.datetime | dt.date):
                    ws.write_datetime(r, c, value, date_format)
                elif isinstance(value, int | float | Decimal):
                    ws.write_number(r, c, float(value))
                else:
                    ws.write_string(r, c, str(value))
        if frame.columns:
            ws.autofilter(0, 0, frame.height, frame.width - 1)
            ws.freeze_panes(1, 0)
    finally:
        book.close()


def _is_amount(frame: pl.DataFrame, col: str) -> bool:
    sample = frame[col].drop_nulls().head(1).to_list()
    return bool(sample) and isinstance(sample[0], str) and sample[0].lstrip("-")[:1].isdigit()


def register(app: typer.Typer) -> None:
    report_app = typer.Typer(help=N_("Reports: aging, customers, KPIs."), no_args_is_help=True)

    @report_app.command(
        "aging", help=N_("Aging of receivables by customer: not yet due and overdue by bucket.")
    )
    def aging(
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        fmt: Format = typer.Option(
            Format.table, "--format", help=N_("Output format: table, csv, json or xlsx.")
        ),
        out: Path | None = typer.Option(
            None, "--out", help=N_("Output file (with --format csv, json or xlsx).")
        ),
        buckets: str = typer.Option(
            "1-30,31-60,61-90,91-120,121+", "--buckets", help=N_("Aging buckets in days overdue.")
        ),
        portfolio: bool = typer.Option(False, "--portfolio", help=N_("Totals only.")),
        limit: int = typer.Option(50, "--limit", help=N_("Rows shown in a table.")),
        as_json: bool = typer.Option(False, "--json", help=N_("Same as --format json.")),
    ) -> None:
        from encours.domain.aging import BucketError
        from encours.services.reports import aging_report, money_columns

        day = parse_as_of(as_of)
        try:
            positions, totals, spec = aging_report(day, state.db_url, buckets)
        except BucketError as exc:
            fail_usage(str(exc))
        keys = [f"{b.key}_minor" for b in spec]
        if portfolio:
            frame = totals.select("currency", "open_invoices", "balance_minor", "not_due_minor",
                                  *keys, "overdue_minor", "unapplied_cash_minor",
                                  "unapplied_credit_minor")  # fmt: skip
        else:
            frame = positions.select("code", "name", "currency", "balance_minor",
                                     "not_due_minor", *keys, "overdue_minor",
                                     "unapplied_cash_minor", "unapplied_credit_minor")  # fmt: skip
        frame = money_columns(frame).rename({f"{b.key}": b.label for b in spec})
        emit(frame, Format.json if as_json else fmt, out,
             _("Aging as of {day}").format(day=day), limit)  # fmt: skip

    @report_app.command(
        "customers",
        help=N_("Each customer's position: balance, overdue, limit, exposure and payment KPIs."),
    )
    def customers(
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        fmt: Format = typer.Option(
            Format.table, "--format", help=N_("Output format: table, csv, json or xlsx.")
        ),
        out: Path | None = typer.Option(
            None, "--out", help=N_("Output file (with --format csv, json or xlsx).")
        ),
        limit: int = typer.Option(50, "--limit", help=N_("Rows shown in a table.")),
        as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
    ) -> None:
        from encours.services.reports import customer_report

        day = parse_as_of(as_of)
        frame = customer_report(day, state.db_url)
        emit(frame, Format.json if as_json else fmt, out,
             _("Customers as of {day}").format(day=day), limit)  # fmt: skip

    @report_app.command(
        "kpis",
        help=N_("Portfolio KPIs: outstanding, overdue, DSO, CEI, ADD, days to pay, late share."),
    )
    def kpis(
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        fmt: Format = typer.Option(
            Format.table, "--format", help=N_("Output format: table, csv, json or xlsx.")
        ),
        out: Path | None = typer.Option(
            None, "--out", help=N_("Output file (with --format csv, json or xlsx).")
        ),
        as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
    ) -> None:
        from encours.services.reports import kpi_report

        day = parse_as_of(as_of)
        frame = kpi_report(day, state.db_url)
        emit(frame, Format.json if as_json else fmt, out,
             _("KPIs as of {day}").format(day=day), 100)  # fmt: skip

    @report_app.command(
        "snapshot",
        help=N_("Keep month-end positions and KPIs for the trends (idempotent; run it monthly)."),
    )
    def snapshot(
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        months: int = typer.Option(
            1, "--months", min=1, max=120, help=N_("Month-ends to (re)build, back from --as-of.")
        ),
        as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
    ) -> None:
        import datetime as dt

        from encours.analytics.snapshots import take_monthly_snapshots
        from encours.store.db import unit_of_work

        day = parse_as_of(as_of)
        index = day.year * 12 + day.month - 1 - (months - 1)
        start = dt.date(index // 12, index % 12 + 1, 1)
        with unit_of_work(state.db_url) as conn:
            taken = take_monthly_snapshots(conn, start, day)
        days = [d.isoformat() for d in taken]
        if as_json:
            print_json({"snapshots": days})
        else:
            console.print(_("Snapshots kept for {n} month-end(s): {days}").format(
                n=len(days), days=", ".join(days) or "-"))  # fmt: skip

    app.add_typer(report_app, name="report")

    @app.command("status", help=N_("Counts and outstanding amount of the ledger as of a day."))
    def status(
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
    ) -> None:
        from encours.services.reports import status as get_status

        payload = get_status(parse_as_of(as_of), state.db_url)
        if as_json:
            print_json(payload)
            return
        table = Table(title=_("encours status as of {day}").format(day=payload["as_of"]))
        table.add_column(_("item"))
        table.add_column(_("value"), justify="right")
        for key in ("customers", "invoices", "credit_notes", "payments", "open_invoices"):
            table.add_row(_(key), str(payload[key]))
        by_currency: dict[str, dict[str, str]] = payload["by_currency"]  # type: ignore[assignment]
        for cur, values in by_currency.items():
            table.add_row(_("outstanding {currency}").format(currency=cur), values["outstanding"])
            table.add_row(_("overdue {currency}").format(currency=cur), values["overdue"])
        console.print(table)
