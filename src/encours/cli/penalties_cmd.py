"""`encours rates ...` (reference rates) and `encours penalties compute` (late-payment charges)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from encours.cli import context
from encours.cli.context import cli_actor, console, err_console, print_json, state
from encours.domain.penalties import (
    ECB,
    LEGAL_CONSUMER,
    LEGAL_PRO,
    RATE_KINDS,
    MissingRateError,
    PenaltyError,
    PenaltyResult,
    RateTable,
    compute_penalties,
)
from encours.i18n import N_, _
from encours.money import MoneyError, check_currency, quantize, to_minor

rates_app = typer.Typer(
    help=N_("Reference rates (ECB refinancing rate, French legal interest rate)."),
    no_args_is_help=True,
)
penalties_app = typer.Typer(
    help=N_("French B2B late-payment penalties and the 40 EUR fixed indemnity."),
    no_args_is_help=True,
)

CONVENTIONS = (
    "Simple interest, 365-day year, from the day after the due date up to and including "
    "the payment day; a new period at each payment and each half-year (1 January, 1 July); "
    "each period rounded half-up to the cent. Penalties are not subject to VAT."
)


def fail_input(message: str) -> NoReturn:
    """Exit 1 (invalid input); the message may quote user text, so no Rich markup."""
    context.fail_input(escape(message))


def fail_usage(message: str) -> NoReturn:
    """Exit 2 (usage)."""
    context.fail_usage(escape(message))


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        fail_input(
            _("{option}: {value!r} is not a date (expected YYYY-MM-DD)").format(
                option=option, value=value
            )
        )


def _parse_decimal(value: str, option: str, what: str) -> Decimal:
    try:
        number = Decimal(value.strip().replace(",", "."))
    except (InvalidOperation, AttributeError):
        number = None
    if number is None or not number.is_finite():
        fail_input(
            _("{option}: {value!r} is not a number (expected {what})").format(
                option=option, value=value, what=what
            )
        )
    return number


def _parse_amount(value: str, option: str, currency: str, *, strict_positive: bool) -> Decimal:
    amount = _parse_decimal(value, option, _("an amount such as 1234.56"))
    if amount < 0 or (strict_positive and amount == 0):
        expected = _("a positive amount") if strict_positive else _("an amount >= 0")
        fail_input(
            _("{option}: {value!r} is not valid (expected {what})").format(
                option=option, value=value, what=expected
            )
        )
    try:
        to_minor(amount, currency)
    except MoneyError as exc:
        fail_input(_("{option}: {error}").format(option=option, error=exc))
    return amount


def _parse_payment(value: str, currency: str) -> tuple[dt.date, Decimal]:
    day, sep, amount = value.partition(":")
    if not sep or not day.strip() or not amount.strip():
        fail_input(
            _("--payment: {value!r} is not DATE:AMOUNT (expected e.g. 2024-08-30:12000.00)").format(
                value=value
            )
        )
    return (
        _parse_date(day, "--payment"),
        _parse_amount(amount, "--payment", currency, strict_positive=True),
    )


def _fmt_money(value: Decimal, currency: str) -> str:
    return str(quantize(value, currency))


def result_as_json(result: PenaltyResult, warnings: list[str] | None = None) -> dict:
    """The JSON payload of `penalties compute` (decimal strings, ISO dates); `warnings`
    (about unconfirmed or missing reference rates) only when there are some."""
    cur = result.currency
    payload: dict = {
        "penalties": _fmt_money(result.penalties, cur),
        "indemnity": _fmt_money(result.indemnity, "EUR"),
        "days_late": result.days_late,
        "periods": [
            {
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "days": p.days,
                "principal": _fmt_money(p.principal, cur),
                "rate": str(p.rate),
                "interest": _fmt_money(p.interest, cur),
            }
            for p in result.periods
        ],
    }
    if result.reason:
        payload["reason"] = result.reason
    if warnings:
        payload["warnings"] = list(warnings)
    return payload


def _warn(messages: list[str]) -> None:
    for message in messages:
        err_console.print(
            "[yellow]" + _("Warning: {message}").format(message=escape(message)) + "[/yellow]"
        )


# --- rates ------------------------------------------------------------------------------


@rates_app.command(
    "list", help=N_("List the reference rates (seeded with the shipped rates when empty).")
)
def rates_list(
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
    kind: str | None = typer.Option(
        None, "--kind", help=N_("Only this kind: ecb, legal_pro or legal_consumer.")
    ),
) -> None:
    from encours.store.db import unit_of_work
    from encours.store.rates import (
        list_rates,
        missing_current_rate_warning,
        missing_legal_rate_warning,
    )

    if kind is not None and kind not in RATE_KINDS:
        fail_usage(
            _("--kind: {value!r} is not a rate kind (expected one of {kinds})").format(
                value=kind, kinds=", ".join(RATE_KINDS)
            )
        )
    with unit_of_work(state.db_url) as conn:
        rows = list_rates(conn)
    rate_table = RateTable((r.kind, r.valid_from, r.rate) for r in rows)
    today = dt.date.today()
    warnings = [
        missing_current_rate_warning(rate_table, today),
        missing_legal_rate_warning(rate_table, today),
    ]
    if kind is not None:
        rows = [r for r in rows if r.kind == kind]
    _warn([w for w in warnings if w])
    if as_json:
        print_json(
            [
                {
                    "kind": r.kind,
                    "valid_from": r.valid_from.isoformat(),
                    "rate": str(r.rate),
                    "note": r.note,
                }
                for r in rows
            ]
        )
        return
    table = Table(title=_("Reference rates (percent per year)"))
    table.add_column(_("Kind"))
    table.add_column(_("From"))
    table.add_column(_("Rate"), justify="right")
    table.add_column(_("Note"))
    for r in rows:
        table.add_row(r.kind, r.valid_from.isoformat(), str(r.rate), r.note or "")
    console.print(table)


@rates_app.command("set", help=N_("Enter or correct a reference rate (recorded in the audit log)."))
def rates_set(
    kind: str = typer.Argument(..., metavar="KIND", help=N_("ecb or legal.")),
    valid_from: str = typer.Argument(..., metavar="FROM", help=N_("Date in force, YYYY-MM-DD.")),
    rate: str = typer.Argument(..., metavar="RATE", help=N_("Percent per year, e.g. 2.15.")),
    consumer: bool = typer.Option(
        False,
        "--consumer",
        help=N_("With `legal`: the rate for a creditor who is not a professional."),
    ),
    note: str | None = typer.Option(None, "--note", help=N_("Free text (source, decision...).")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    from encours.store.db import unit_of_work
    from encours.store.rates import RateInputError, check_rate, set_rate

    kind = kind.strip().lower()
    if kind == "ecb":
        if consumer:
            fail_usage(_("--consumer only applies to the legal interest rate (kind `legal`)"))
        table_kind = ECB
    elif kind == "legal":
        table_kind = LEGAL_CONSUMER if consumer else LEGAL_PRO
    else:
        fail_usage(
            _("KIND: {value!r} is not a rate kind (expected ecb or legal)").format(value=kind)
        )
    day = _parse_date(valid_from, "FROM")
    try:
        value = check_rate(rate)
    except RateInputError as exc:
        fail_input(_("{option}: {error}").format(option="RATE", error=exc))
    with unit_of_work(state.db_url) as conn:
        row = set_rate(conn, table_kind, day, value, cli_actor(), note=note)
    if as_json:
        print_json(row.as_strings())
    else:
        console.print(
            _("{kind} rate from {day}: {rate} %").format(
                kind=row.kind, day=row.valid_from.isoformat(), rate=row.rate
            )
        )


# --- penalties --------------------------------------------------------------------------


@penalties_app.command(
    "compute",
    help=N_(
        "Late-payment penalties (art. L441-10 II) and the 40 EUR fixed indemnity of one invoice."
    ),
)
def penalties_compute(
    amount: str = typer.Option(..., "--amount", help=N_("Invoice amount incl. VAT.")),
    due: str = typer.Option(..., "--due", help=N_("Due date, YYYY-MM-DD.")),
    payment: list[str] = typer.Option(
        [], "--payment", help=N_("DATE:AMOUNT of a payment (repeatable).")
    ),
    rate: str | None = typer.Option(
        None, "--rate", help=N_("Contractual rate, percent per year (floored at 3x legal rate).")
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help=N_("Compute as of this date (default today); payments after it are ignored."),
    ),
    consumer: bool = typer.Option(
        False, "--consumer", help=N_("The customer is a consumer (B2C).")
    ),
    insolvency: bool = typer.Option(
        False, "--insolvency", help=N_("The customer is in a collective insolvency procedure.")
    ),
    currency: str = typer.Option("EUR", "--currency", help=N_("Currency of the invoice.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    from encours.store.db import unit_of_work
    from encours.store.rates import load_rate_table, penalty_rate_warnings

    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        fail_input(_("{option}: {error}").format(option="--currency", error=exc))
    value = _parse_amount(amount, "--amount", currency, strict_positive=False)
    due_date = _parse_date(due, "--due")
    payments = [_parse_payment(p, currency) for p in payment]
    contractual = None
    if rate is not None:
        contractual = _parse_decimal(rate, "--rate", _("a percent per year such as 12.5"))
        if contractual < 0 or contractual > 100:
            fail_input(
                _(
                    "--rate: {value!r} is out of range (expected a percent between 0 and 100)"
                ).format(value=rate)
            )
    day = _parse_date(as_of, "--as-of") if as_of is not None else dt.date.today()

    with unit_of_work(state.db_url) as conn:
        rates = load_rate_table(conn)
    try:
        result = compute_penalties(
            value,
            due_date,
            payments,
            rates,
            as_of=day,
            contractual_rate=contractual,
            is_consumer=consumer,
            in_insolvency=insolvency,
            currency=currency,
        )
    except MissingRateError as exc:
        command = {ECB: "ecb", LEGAL_PRO: "legal", LEGAL_CONSUMER: "legal --consumer"}[exc.kind]
        fail_input(
            _("Missing reference rate: {error}; enter it with `{hint}`.").format(
                error=exc,
                hint=f"encours rates set {command} {exc.reference_day.isoformat()} RATE",
            )
        )
    except PenaltyError as exc:
        fail_input(str(exc))

    # The rates of the half-years the periods fall in: an ECB rate not confirmed, a legal
    # rate not entered (the floor then uses the latest known one) -> warnings, on stderr.
    warnings = penalty_rate_warnings(
        rates, [p.start for p in result.periods], contractual=contractual is not None
    )
    _warn(warnings)
    if as_json:
        print_json(result_as_json(result, warnings))
        return
    _print_result(result)


def _print_result(result: PenaltyResult) -> None:
    cur = result.currency
    table = Table(title=_("Late-payment penalties"), caption=_(CONVENTIONS))
    table.add_column(_("From"))
    table.add_column(_("To"))
    table.add_column(_("Days"), justify="right")
    table.add_column(_("Principal"), justify="right")
    table.add_column(_("Rate %"), justify="right")
    table.add_column(_("Interest"), justify="right")
    for p in result.periods:
        table.add_row(
            p.start.isoformat(),
            p.end.isoformat(),
            str(p.days),
            _fmt_money(p.principal, cur),
            str(p.rate),
            _fmt_money(p.interest, cur),
        )
    console.print(table)
    console.print(_("Days late: {days}").format(days=result.days_late))
    console.print(
        _("Penalties: {amount} {currency}").format(
            amount=_fmt_money(result.penalties, cur), currency=cur
        )
    )
    console.print(
        _("Fixed indemnity: {amount} {currency}").format(
            amount=_fmt_money(result.indemnity, "EUR"), currency="EUR"
        )
    )
    if result.reason:
        console.print(
            _("No penalties nor indemnity: the customer is a consumer")
            if result.reason == "consumer"
            else _("No penalties nor indemnity: the customer is in an insolvency procedure")
        )


def register(app: typer.Typer) -> None:
    app.add_typer(rates_app, name="rates")
    app.add_typer(penalties_app, name="penalties")
