"""`encours monitor` and `encours alerts ...`: the daily alerts and their digest.

Daily, from cron (see `encours.risk.monitor`)::

    15 6 * * * cd /srv/encours && .venv/bin/encours monitor && .venv/bin/encours alerts digest
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from decimal import Decimal, InvalidOperation

import typer
from rich.table import Table

from encours.cli.context import console, fail_input, fail_usage, parse_as_of, print_json, state
from encours.i18n import N_, _

AS_OF_HELP = "Day of the run (YYYY-MM-DD, default today)."


def _actor(by: str | None) -> str:
    return by or os.environ.get("ENCOURS_USER") or getpass.getuser()


def _jsonable_alert(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        out[key] = value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
    return out


def register(app: typer.Typer) -> None:  # noqa: C901
    alerts_app = typer.Typer(help=N_("Alerts raised by `encours monitor`."), no_args_is_help=True)

    @app.command(
        "monitor",
        help=N_("Raise, refresh and close the alerts of the day; prints the counts per kind."),
        epilog=N_(
            "Meant to run every morning from cron, as the user owning the installation, "
            "followed by the digest:\n\n"
            "15 6 * * * cd /srv/encours && .venv/bin/encours monitor && "
            ".venv/bin/encours alerts digest\n\n"
            "Reassess the risk classes weekly before it (class downgrades, reviews due):\n\n"
            "0 6 * * 1 cd /srv/encours && .venv/bin/encours risk assess"
        ),
    )
    def monitor(
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        as_json: bool = typer.Option(False, "--json"),
        new_overdue_amount: str = typer.Option(None, "--new-overdue-amount",
                                               help=N_("Default 10000.00.")),
        dso_increase_days: str = typer.Option(None, "--dso-increase-days", help=N_("Default 15.")),
        large_invoice_amount: str = typer.Option(None, "--large-invoice-amount",
                                                 help=N_("Default 10000.00.")),
        p_late: str = typer.Option(None, "--p-late", help=N_("Default 0.7.")),
        large_order_amount: str = typer.Option(None, "--large-order-amount",
                                               help=N_("Default 10000.00.")),
        lookback_days: int = typer.Option(None, "--lookback-days", help=N_("Default 30.")),
        by: str = typer.Option(None, "--by", help=N_("Who runs it (default the user).")),
    ) -> None:  # fmt: skip
        from encours.risk.monitor import Thresholds, kind_label, run_monitor
        from encours.store.db import unit_of_work

        day = parse_as_of(as_of)
        try:
            thresholds = Thresholds.from_env().with_overrides(
                new_overdue_amount=new_overdue_amount, dso_increase_days=dso_increase_days,
                large_invoice_amount=large_invoice_amount, p_late=p_late,
                large_order_amount=large_order_amount, lookback_days=lookback_days,
            )  # fmt: skip
        except ValueError as exc:
            fail_usage(str(exc))
        with unit_of_work(state.db_url) as conn:
            report = run_monitor(conn, day, thresholds, actor=_actor(by))
        if as_json:
            print_json(report.as_dict())
            return
        table = Table(title=_("Alerts on {day}").format(day=day.isoformat()))
        for column in (_("kind"), _("found"), _("new"), _("re-raised"), _("open alerts")):
            table.add_column(column)
        for kind, counts in report.counts.items():
            found = "-" if kind in report.skipped else str(counts["found"])
            table.add_row(kind_label(kind), found, str(counts["new"]),
                          str(counts["reraised"]), str(counts["open"]))  # fmt: skip
        console.print(table)
        for kind, reason in report.skipped.items():
            console.print(_("{kind}: skipped ({reason})").format(kind=kind_label(kind),
                                                                 reason=reason))  # fmt: skip
        console.print(_("{n} alert(s) closed").format(n=report.closed))

    @alerts_app.command("list", help=N_("The alerts, most severe first."))
    def list_cmd(
        status: str = typer.Option("open", "--status", help=N_("open, acknowledged, closed, all.")),
        assignee: str = typer.Option(None, "--assignee"),
        kind: str = typer.Option(None, "--kind"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.monitor import kind_label, list_alerts, severity_label
        from encours.store.alerts_schema import ALERT_KINDS, ALERT_STATUSES
        from encours.store.db import unit_of_work

        if status != "all" and status not in ALERT_STATUSES:
            fail_usage(_("--status: expected one of {values}").format(
                values=", ".join((*ALERT_STATUSES, "all"))))  # fmt: skip
        if kind is not None and kind not in ALERT_KINDS:
            fail_usage(_("--kind: expected one of {values}").format(values=", ".join(ALERT_KINDS)))
        with unit_of_work(state.db_url) as conn:
            rows = list_alerts(conn, status=None if status == "all" else status,
                               assignee=assignee, kind=kind)  # fmt: skip
        if as_json:
            print_json([_jsonable_alert(r) for r in rows])
            return
        table = Table(title=_("Alerts"))
        for column in ("#", _("severity"), _("kind"), _("customer"), _("assignee"),
                       _("since"), _("status"), _("alert")):  # fmt: skip
            table.add_column(column)
        for r in rows:
            table.add_row(str(r["id"]), severity_label(r["severity"]), kind_label(r["kind"]),
                          f"{r['customer_code']} {r['customer_name']}", r["assignee"] or "",
                          r["as_of"].isoformat(), r["status"], r["title"])  # fmt: skip
        console.print(table)

    @alerts_app.command(
        "ack",
        help=N_("Acknowledge an open alert with a comment (audited, on the customer's timeline)."),
    )
    def ack(
        alert_id: int = typer.Argument(..., help=N_("The alert's number.")),
        comment: str = typer.Option(..., "--comment", help=N_("What was done or decided.")),
        by: str = typer.Option(None, "--by", help=N_("Who acknowledges (default the user).")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.monitor import acknowledge
        from encours.store.db import unit_of_work

        try:
            with unit_of_work(state.db_url) as conn:
                row = acknowledge(conn, alert_id, comment, _actor(by))
        except (LookupError, ValueError) as exc:
            fail_input(str(exc))
        if as_json:
            print_json(_jsonable_alert(row))
            return
        message = _("Alert {id} acknowledged by {actor}")
        console.print(message.format(id=alert_id, actor=row["acknowledged_by"]))

    @alerts_app.command("digest", help=N_("Email each assignee the digest of their open alerts."))
    def digest(
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        dry_run: bool = typer.Option(
            False, "--dry-run", help=N_("Print the digests, send nothing.")
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.digest import build_digests, send_digests
        from encours.store.db import unit_of_work

        day = parse_as_of(as_of)
        if dry_run:
            with unit_of_work(state.db_url) as conn:
                digests = build_digests(conn, day)
            if as_json:
                print_json([d.as_dict() for d in digests])
                return
            for d in digests:
                to = ", ".join(d.recipients) or _("(no recipient)")
                typer.echo(f"To: {to}\nSubject: {d.subject}\n\n{d.body}")
            return
        report = send_digests(state.db_url, day)
        if as_json:
            print_json(report.as_dict())
        else:
            for entry in report.sent:
                console.print(_("Digest sent to {to} ({n} alerts)").format(
                    to=", ".join(entry["recipients"]), n=entry["alerts"]))  # fmt: skip
            for assignee in report.no_recipient:
                console.print(_("No address for {name}: set ENCOURS_DIGEST_RECIPIENTS or "
                                "ENCOURS_DIGEST_TO").format(name=assignee or "-"))  # fmt: skip
            for entry in report.failed:
                console.print(f"[red]{entry['assignee'] or '-'}: {entry['error']}[/red]")
        if report.failed:
            raise typer.Exit(1)

    @alerts_app.command(
        "order", help=N_("Check an order (as `encours check order`) and log it for the monitoring.")
    )
    def order(
        customer: str = typer.Option(..., "--customer", help=N_("The customer's code.")),
        amount: str = typer.Option(..., "--amount", help=N_("Order amount incl. VAT.")),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        by: str = typer.Option(None, "--by"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.monitor import check_and_record_order
        from encours.store.db import unit_of_work

        try:
            value = Decimal(amount.replace(",", ".").replace(" ", ""))
        except InvalidOperation:
            fail_usage(_("{option}: {value!r} is not an amount").format(option="--amount",
                                                                        value=amount))  # fmt: skip
        try:
            with unit_of_work(state.db_url) as conn:
                result, check_id = check_and_record_order(
                    conn, customer, value, parse_as_of(as_of), _actor(by)
                )
        except LookupError as exc:
            fail_input(str(exc))
        payload = {"order_check_id": check_id, **result.as_dict()}
        if as_json:
            print_json(payload)
            return
        labels = {"approve": _("approve"), "warn": _("warn"), "hold": _("hold")}
        console.print(f"{labels[result.decision]}: " + "; ".join(payload["reasons"]))

    app.add_typer(alerts_app, name="alerts")
