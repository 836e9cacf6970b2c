"""Delivery and documents: `encours outbox send`, `statement`, `notice`, `legal`, `charges`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.markup import escape
from typer.core import TyperGroup

from encours.cli import context
from encours.cli.context import cli_actor, console, parse_as_of, print_json, state
from encours.company import require_company
from encours.i18n import N_, _, current_language

if TYPE_CHECKING:
    from encours.collections.outbox import SendReport

outbox_app = typer.Typer(help=N_("Deliver approved communications."), no_args_is_help=True)
legal_app = typer.Typer(help=N_("Files for legal action and third parties."), no_args_is_help=True)
charges_app = typer.Typer(
    help=N_("Late-payment penalties: charge invoice (Factur-X) or waiver."), no_args_is_help=True
)


class _DefaultCommandGroup(TyperGroup):
    """`encours notice CUSTOMER ...` runs `notice create`; `encours notice mark-sent ...`
    runs the subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # noqa: ANN401
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


notice_app = typer.Typer(
    cls=_DefaultCommandGroup,
    help=N_("Formal notice (mise en demeure): `notice CUSTOMER ...` or `notice mark-sent ID`."),
    no_args_is_help=True,
)


def _fail_input(message: str) -> NoReturn:
    context.fail_input(escape(message))


def _language(lang: str | None) -> str:
    if lang is not None and lang not in ("fr", "en"):
        context.fail_usage(_("--lang: {value!r} is not fr or en").format(value=lang))
    return lang or current_language()


def _customer_id(conn, code: str) -> int:  # noqa: ANN001
    from encours.collections.pdf import DocumentError
    from encours.collections.statement import find_customer_id

    try:
        return find_customer_id(conn, code)
    except DocumentError:
        _fail_input(_("Unknown customer {code!r}").format(code=code))


def print_send_report(report: SendReport, as_json: bool) -> None:
    """What a send delivered (`outbox send`, `dunning send`); exit 1 when a message failed
    permanently."""
    if as_json:
        print_json(report.as_dict())
    else:
        console.print(
            _("Emails sent: {sent}, to retry: {retry}, failed: {failed}").format(
                sent=report.emails_sent,
                retry=report.emails_retried_later,
                failed=report.emails_failed,
            )  # fmt: skip
        )
        if report.letter_batch:
            console.print(
                _("Letters: {count} ({batch})").format(
                    count=report.letters, batch=escape(report.letter_batch)
                )
            )
        else:
            console.print(_("Letters: {count}").format(count=report.letters))
        console.print(_("Phone calls: {count}").format(count=report.calls))
        if report.held_by_another_sender:
            console.print(_("Left to another sender still sending them: {count}").format(
                count=report.held_by_another_sender))  # fmt: skip
        for note in report.notes:
            console.print(escape(note))
        for failure in report.failed:
            console.print(f"[red]{failure['id']} {escape(str(failure['error']))}[/red]")
    if report.failed:
        raise typer.Exit(context.EXIT_INVALID_INPUT)


LANG_OPTION = typer.Option(None, "--lang", help=N_("Language of the document: fr or en."))


@outbox_app.command(
    "send",
    help=N_("Send approved emails (SMTP), print letters into one PDF batch, queue phone calls."),
)
def outbox_send(
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the run (default today).")),
    out: Path = typer.Option(Path("."), "--out", help=N_("Directory of the letter batch PDF.")),
    limit: int | None = typer.Option(None, "--limit", help=N_("At most N per channel.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    require_company()  # real customers: refuse without the company settings
    from encours.collections.outbox import send_pending

    report = send_pending(state.db_url, parse_as_of(as_of), out, limit=limit, actor=cli_actor())
    print_send_report(report, as_json)


def statement_command(
    customer: str = typer.Argument(..., metavar="CUSTOMER_CODE", help=N_("Customer code.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the statement.")),
    out: Path = typer.Option(..., "--out", help=N_("PDF file to write.")),
    lang: str | None = LANG_OPTION,
) -> None:
    """Statement of account (relevé de compte) of a customer as a PDF."""
    require_company(strict=False)  # a draft may be previewed: warn only
    from encours.collections.pdf import write_atomically
    from encours.collections.statement import statement_of_account_pdf
    from encours.store.db import unit_of_work

    language = _language(lang)
    with unit_of_work(state.db_url) as conn:
        customer_id = _customer_id(conn, customer)
        pdf = statement_of_account_pdf(conn, customer_id, parse_as_of(as_of), language)
    write_atomically(out, pdf)
    console.print(_("Written: {path}").format(path=escape(str(out))))


def plan_letter_command(
    plan_id: int = typer.Argument(..., metavar="PLAN_ID", help=N_("Payment plan number.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the letter.")),
    out: Path = typer.Option(..., "--out", help=N_("PDF file to write.")),
    lang: str | None = LANG_OPTION,
) -> None:
    require_company(strict=False)  # a draft may be previewed: warn only
    from encours.collections.pdf import DocumentError, write_atomically
    from encours.collections.statement import payment_plan_letter_pdf
    from encours.store.db import unit_of_work

    language = _language(lang)
    try:
        with unit_of_work(state.db_url) as conn:
            pdf = payment_plan_letter_pdf(conn, plan_id, parse_as_of(as_of), language)
    except DocumentError as exc:
        _fail_input(str(exc))
    write_atomically(out, pdf)
    console.print(_("Written: {path}").format(path=escape(str(out))))


@notice_app.command(
    "create",
    help=N_(
        "Formal notice (mise en demeure) of a customer as a PDF, recorded as a letter "
        "to send by registered mail."
    ),
)
def notice_create(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help=N_("Customer code.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the notice.")),
    deadline_days: int = typer.Option(8, "--deadline-days", help=N_("Days given to pay.")),
    out: Path = typer.Option(..., "--out", help=N_("PDF file to write.")),
    lang: str | None = LANG_OPTION,
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    require_company(strict=False)  # a draft may be previewed: warn only
    from encours.collections.legal import build_notice, notice_pdf, record_notice
    from encours.collections.pdf import DocumentError, write_atomically
    from encours.store.db import unit_of_work

    language = _language(lang)
    try:
        with unit_of_work(state.db_url) as conn:
            customer_id = _customer_id(conn, customer)
            notice = build_notice(conn, customer_id, parse_as_of(as_of), deadline_days)
            write_atomically(out, notice_pdf(notice, language))
            communication_id = record_notice(conn, notice, out.resolve(), language, cli_actor())
            # An existing communication (e.g. the dunning run's letter) keeps its own PDF.
            document_path = _document_path(conn, communication_id)
    except DocumentError as exc:
        _fail_input(str(exc))
    payload = {
        "communication_id": communication_id,
        "path": str(out),
        "document_path": document_path,
        "total": str(notice.total),
        "currency": notice.currency,
        "deadline": notice.deadline.isoformat(),
    }
    if as_json:
        print_json(payload)
    else:
        console.print(
            _("Formal notice {id} written to {path}; after posting it run "
              "`encours notice mark-sent {id} --tracking NUMBER`").format(
                id=communication_id, path=escape(str(out)))
        )  # fmt: skip


def _document_path(conn, communication_id: int) -> str | None:  # noqa: ANN001
    from sqlalchemy import select

    from encours.store.outbox_schema import Communication

    return conn.execute(
        select(Communication.document_path).where(Communication.id == communication_id)
    ).scalar_one_or_none()


@notice_app.command(
    "mark-sent", help=N_("Record that a letter left by registered mail, with its tracking number.")
)
def notice_mark_sent(
    communication_id: int = typer.Argument(
        ...,
        metavar="COMMUNICATION_ID",
        help=N_("Communication number (see `encours dunning list`)."),
    ),
    tracking: str = typer.Option(..., "--tracking", help=N_("Registered letter number.")),
) -> None:
    from encours.collections.legal import mark_notice_sent
    from encours.collections.pdf import DocumentError
    from encours.store.db import unit_of_work

    try:
        with unit_of_work(state.db_url) as conn:
            mark_notice_sent(conn, communication_id, tracking, cli_actor())
    except DocumentError as exc:
        _fail_input(str(exc))
    console.print(_("Communication {id} marked sent ({tracking})").format(
        id=communication_id, tracking=escape(tracking)))  # fmt: skip


@legal_app.command(
    "file",
    help=N_(
        "The injonction de payer file (notice, statement, invoices, penalties, request) as a ZIP."
    ),
)
def legal_file_command(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help=N_("Customer code.")),
    out: Path = typer.Option(..., "--out", help=N_("Directory of the ZIP file.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the file.")),
    lang: str | None = typer.Option(
        None,
        "--lang",
        help=N_(
            "Language of the formal notice when it must be made again; the court file "
            "itself is always in French."
        ),
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help=N_(
            "Make the file even without a formal notice sent by registered letter whose "
            "deadline has passed (the request says so)."
        ),
    ),
) -> None:
    require_company()  # filed with the court: refuse without the company settings
    from encours.collections.legal import check_legal_file, legal_file
    from encours.collections.pdf import DocumentError
    from encours.store.db import unit_of_work

    day = parse_as_of(as_of)
    try:
        with unit_of_work(state.db_url) as conn:
            customer_id = _customer_id(conn, customer)
            problems = check_legal_file(conn, customer_id, day).problems
            if problems and not force:
                _fail_input(
                    _("No injonction de payer file for {code}: {problems} (--force to make "
                      "it anyway)").format(code=customer, problems="; ".join(problems))
                )  # fmt: skip
            path = legal_file(conn, customer_id, day, out, _language(lang), force=force)
    except DocumentError as exc:
        _fail_input(str(exc))
    for problem in problems:
        console.print(
            "[yellow]" + escape(_("Made with --force: {problem}").format(problem=problem))
            + "[/yellow]"
        )  # fmt: skip
    console.print(_("Written: {path}").format(path=escape(str(path))))


@legal_app.command(
    "export",
    help=N_("Export a claim for a collection agency or a credit insurer (CSV + PDFs in a ZIP)."),
)
def legal_export_command(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help=N_("Customer code.")),
    kind: str = typer.Option(..., "--kind", help=N_("agency or insurer.")),
    out: Path = typer.Option(..., "--out", help=N_("Directory of the ZIP file.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the export.")),
    lang: str | None = LANG_OPTION,
) -> None:
    require_company(strict=False)  # a draft may be previewed: warn only
    from encours.collections.legal import EXPORT_KINDS, legal_export
    from encours.collections.pdf import DocumentError
    from encours.store.db import unit_of_work

    if kind not in EXPORT_KINDS:
        context.fail_usage(_("--kind: {value!r} is not agency or insurer").format(value=kind))
    try:
        with unit_of_work(state.db_url) as conn:
            path = legal_export(conn, _customer_id(conn, customer), parse_as_of(as_of), kind,
                                out, _language(lang))  # fmt: skip
    except DocumentError as exc:
        _fail_input(str(exc))
    console.print(_("Written: {path}").format(path=escape(str(path))))


@charges_app.command(
    "invoice", help=N_("Invoice the late-payment penalties and indemnities (Factur-X PDF, no VAT).")
)
def charges_invoice(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help=N_("Customer code.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Issue day of the charge invoice.")),
    out: Path = typer.Option(..., "--out", help=N_("Factur-X PDF file to write.")),
    lang: str | None = LANG_OPTION,
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    require_company(strict=False)  # a draft may be previewed: warn only
    from encours.collections.charges import charge_invoice
    from encours.collections.pdf import DocumentError, write_atomically
    from encours.store.db import unit_of_work

    try:
        with unit_of_work(state.db_url) as conn:
            invoice = charge_invoice(conn, _customer_id(conn, customer), parse_as_of(as_of),
                                     actor=cli_actor(), language=_language(lang))  # fmt: skip
            write_atomically(out, invoice.pdf)
    except DocumentError as exc:
        _fail_input(str(exc))
    payload = {
        "number": invoice.number,
        "penalties": str(invoice.penalties),
        "indemnities": str(invoice.indemnities),
        "total": str(invoice.total),
        "due_date": invoice.due_date.isoformat(),
        "path": str(out),
    }
    if as_json:
        print_json(payload)
    else:
        console.print(_("Charge invoice {number}: {total} EUR, written to {path}").format(
            number=invoice.number, total=invoice.total, path=escape(str(out))))  # fmt: skip


@charges_app.command(
    "waive",
    help=N_("Waive the penalties and indemnities claimable today, with a reason (audited)."),
)
def charges_waive(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help=N_("Customer code.")),
    reason: str = typer.Option(..., "--reason", help=N_("Why the penalties are waived.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Penalties accrued up to this day.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    from encours.collections.charges import waive_penalties
    from encours.collections.pdf import DocumentError
    from encours.store.db import unit_of_work

    try:
        with unit_of_work(state.db_url) as conn:
            record = waive_penalties(conn, _customer_id(conn, customer), reason, cli_actor(),
                                     parse_as_of(as_of))  # fmt: skip
    except DocumentError as exc:
        _fail_input(str(exc))
    if as_json:
        print_json(record)
    else:
        console.print(_("Waived for {count} invoices").format(count=len(record["lines"])))


def register(app: typer.Typer) -> None:
    app.add_typer(outbox_app, name="outbox")
    app.command("statement")(statement_command)
    app.command(
        "plan-letter",
        help=N_(
            "Payment-plan proposal letter (the amicable path) as a PDF: `dunning plan` "
            "records the plan and prints its number."
        ),
    )(plan_letter_command)
    app.add_typer(notice_app, name="notice")
    app.add_typer(legal_app, name="legal")
    app.add_typer(charges_app, name="charges")
