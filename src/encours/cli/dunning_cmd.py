"""`encours dunning ...`: runs, the outbox, collectors' actions and policies."""

from __future__ import annotations

import datetime as dt
import getpass
import importlib
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from encours.cli import context
from encours.cli.context import console, err_console, parse_as_of, print_json, state
from encours.i18n import _
from encours.money import from_minor

dunning_app = typer.Typer(
    help="Dunning: policies, runs, promises, disputes, holds, calls, payment plans.",
    no_args_is_help=True,
)
policy_app = typer.Typer(help="Dunning policies and their assignment.", no_args_is_help=True)
dunning_app.add_typer(policy_app, name="policy")


def fail_input(message: str) -> NoReturn:
    context.fail_input(escape(message))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        fail_input(
            _("{option}: {value!r} is not a date (expected YYYY-MM-DD)").format(
                option=option, value=value
            )
        )


def _money(minor: int | None, currency: str) -> str:
    return f"{from_minor(minor or 0, currency)} {currency}"


def _uow():  # noqa: ANN202
    from encours.store.db import unit_of_work

    return unit_of_work(state.db_url)


def _action(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    """Run an action in one unit of work; its errors are invalid input (exit 1)."""
    from encours.collections.actions import ActionError
    from encours.domain.dunning import PolicyError

    try:
        with _uow() as conn:
            return fn(conn, *args, **kwargs)
    except (ActionError, PolicyError) as exc:
        fail_input(str(exc))


# --- run --------------------------------------------------------------------------------


@dunning_app.command("run")
def run_cmd(
    as_of: str | None = typer.Option(None, "--as-of", help="Day of the run (default today)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
    template_dir: Path | None = typer.Option(
        None, "--template-dir", help="Templates overriding the shipped ones (ENCOURS_TEMPLATE_DIR)."
    ),
) -> None:
    """Decide what to send as of the day and create the communications (one transaction).

    A message whose template fails is not created; the others are, and the errors are
    listed (exit code 1). Running again for the same day creates nothing new."""
    from encours.collections.engine import run_dunning
    from encours.collections.templates import Renderer

    day = parse_as_of(as_of)
    renderer = Renderer(template_dir)
    with _uow() as conn:
        result = run_dunning(conn, day, dry_run=dry_run, actor=_actor(), renderer=renderer)
    if as_json:
        print_json({
            **result.summary(),
            "plan": [{k: r[k] for k in ("customer_code", "customer_name", "level_code",
                                        "channel", "language", "status",
                                        "requires_approval_by", "to_address", "currency",
                                        "total_due_minor", "penalties_minor",
                                        "indemnities_minor", "invoice_count", "subject")}
                     for r in result.plan],
            "error_details": [e.__dict__ for e in result.errors],
        })  # fmt: skip
    else:
        title = (_("Dunning plan as of {day} (dry run: nothing written)") if dry_run
                 else _("Dunning run as of {day}")).format(day=day.isoformat())  # fmt: skip
        table = Table(title=title)
        for col in (_("Customer"), _("Level"), _("Channel"), _("Lang"), _("Status"),
                    _("Invoices"), _("Due"), _("Penalties"), _("Indemnities")):  # fmt: skip
            table.add_column(col)
        for r in result.plan:
            status = r["status"] + (f" ({r['requires_approval_by']})"
                                    if r["requires_approval_by"] else "")  # fmt: skip
            table.add_row(
                escape(f"{r['customer_code']} {r['customer_name']}"), r["level_code"],
                r["channel"], r["language"], status, str(r["invoice_count"]),
                _money(r["total_due_minor"], r["currency"]),
                _money(r["penalties_minor"], r["currency"]),
                _money(r["indemnities_minor"], "EUR"),
            )  # fmt: skip
        console.print(table)
        summary = result.summary()
        console.print(
            _("{messages} messages ({drafts} awaiting approval), {tasks} call tasks; "
              "skipped: {skipped}").format(
                messages=summary["messages"], drafts=summary["drafts"],
                tasks=summary["tasks_created"], skipped=escape(str(summary["skipped"])),
            )
        )  # fmt: skip
    for error in result.errors:
        err_console.print(
            escape(_("Not created: {customer} {level}: {template}: {message}").format(
                customer=error.customer_code, level=error.level_code,
                template=error.template, message=error.message,
            ))
        )  # fmt: skip
    if result.errors:
        raise typer.Exit(context.EXIT_INVALID_INPUT)


@dunning_app.command("send")
def send_cmd(
    as_of: str | None = typer.Option(None, "--as-of", help="Day (default today)."),
    out_dir: Path = typer.Option(Path("outbox"), "--out-dir", help="Where letters are written."),
) -> None:
    """Deliver the approved communications (email, letters)."""
    try:
        outbox = importlib.import_module("encours.collections.outbox")
        send_pending = outbox.send_pending
    except (ImportError, AttributeError):
        fail_input(_("Delivery is not available: encours.collections.outbox.send_pending "
                     "is not installed."))  # fmt: skip
    from encours.store.db import resolve_url

    result = send_pending(resolve_url(state.db_url), as_of=parse_as_of(as_of), out_dir=out_dir)
    if result is not None:
        console.print(escape(str(result)))


# --- actions ----------------------------------------------------------------------------


@dunning_app.command("promise")
def promise_cmd(
    customer: str = typer.Argument(..., help="Customer code."),
    date: str = typer.Option(..., "--date", help="Promised payment date."),
    amount: str = typer.Option(..., "--amount", help="Promised amount."),
    grace: int = typer.Option(3, "--grace", help="Grace days after the promised date."),
    note: str | None = typer.Option(None, "--note"),
    as_of: str | None = typer.Option(None, "--as-of", help="Day of the promise (default today)."),
) -> None:
    """Record a promise to pay: dunning pauses until the date + grace days."""
    from encours.collections.actions import record_promise

    promised = _date(date, "--date")
    try:
        Decimal(amount.replace(",", "."))
    except ArithmeticError:
        fail_input(_("invalid amount {amount!r}").format(amount=amount))
    promise_id = _action(record_promise, customer, promised, amount, parse_as_of(as_of),
                         _actor(), grace_days=grace, note=note)  # fmt: skip
    console.print(_("Promise {id} recorded").format(id=promise_id))


@dunning_app.command("dispute")
def dispute_cmd(
    invoice: str = typer.Argument(..., help="Invoice number."),
    reason: str = typer.Option("", "--reason", help="Reason (or resolution with --resolve)."),
    resolve: bool = typer.Option(False, "--resolve", help="Resolve the invoice's dispute."),
    as_of: str | None = typer.Option(None, "--as-of", help="Day (default today)."),
) -> None:
    """Dispute an invoice (left out of dunning) or resolve its dispute."""
    from encours.collections.actions import open_dispute, resolve_dispute

    day = parse_as_of(as_of)
    if resolve:
        _action(resolve_dispute, invoice, reason, day, _actor())
        console.print(_("Dispute on invoice {number} resolved").format(number=invoice))
    else:
        _action(open_dispute, invoice, reason, day, _actor())
        console.print(_("Invoice {number} disputed").format(number=invoice))


@dunning_app.command("hold")
def hold_cmd(
    customer: str = typer.Argument(..., help="Customer code."),
    reason: str = typer.Option(..., "--reason", help="Why the customer is not dunned."),
    until: str = typer.Option(..., "--until", help="Last day of the hold."),
    as_of: str | None = typer.Option(None, "--as-of", help="First day (default today)."),
) -> None:
    """Do not dun a customer until a day (a reason is required)."""
    from encours.collections.actions import add_hold

    _action(add_hold, customer, reason, _date(until, "--until"), parse_as_of(as_of), _actor())
    console.print(_("Customer {code} on hold until {date}").format(code=customer, date=until))


@dunning_app.command("call")
def call_cmd(
    customer: str = typer.Argument(..., help="Customer code."),
    outcome: str = typer.Option(..., "--outcome", help="reached, promised, disputed, no_answer."),
    note: str | None = typer.Option(None, "--note"),
    as_of: str | None = typer.Option(None, "--as-of", help="Day (default today)."),
) -> None:
    """Record a call's outcome (closes the customer's open call tasks)."""
    from encours.collections.actions import record_call

    closed = _action(record_call, customer, outcome, parse_as_of(as_of), _actor(), note)
    console.print(_("Call recorded ({count} tasks closed)").format(count=len(closed)))


@dunning_app.command("plan")
def plan_cmd(
    customer: str = typer.Argument(..., help="Customer code."),
    instalment: list[str] = typer.Option(..., "--instalment", help="DATE:AMOUNT, repeatable."),
    grace: int = typer.Option(3, "--grace", help="Grace days after each instalment."),
    as_of: str | None = typer.Option(None, "--as-of", help="Day of the plan (default today)."),
) -> None:
    """Agree a payment plan; dunning follows it instalment by instalment."""
    from encours.collections.actions import create_plan

    rows = []
    for value in instalment:
        day, sep, amount = value.partition(":")
        if not sep:
            fail_input(_("--instalment: {value!r} is not DATE:AMOUNT").format(value=value))
        rows.append((_date(day, "--instalment"), amount))
    plan_id = _action(create_plan, customer, rows, parse_as_of(as_of), _actor(), grace_days=grace)
    console.print(_("Payment plan {id} recorded").format(id=plan_id))


@dunning_app.command("approve")
def approve_cmd(
    role: str = typer.Option(..., "--as", help="Approving role: credit_manager or sales."),
    customer: str | None = typer.Option(None, "--customer", help="Customer code."),
    all_: bool = typer.Option(False, "--all", help="Every draft waiting for the role."),
    as_of: str | None = typer.Option(None, "--as-of", help="Day (default today)."),
) -> None:
    """Approve the drafts waiting for a role (one customer's, or --all)."""
    from encours.collections.actions import approve

    if (customer is None) == (not all_):
        context.fail_usage(_("give either --customer or --all"))
    ids = _action(approve, role, _actor(), parse_as_of(as_of), customer)
    console.print(_("{count} communications approved").format(count=len(ids)))


@dunning_app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="draft, approved, sent, ..."),
    customer: str | None = typer.Option(None, "--customer", help="Customer code."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The communications (newest first)."""
    from encours.collections.actions import list_communications

    frame = _action(list_communications, status, customer)
    if as_json:
        print_json(frame.to_dicts())
        return
    table = Table(title=_("Communications"))
    for col in ("id", _("Day"), _("Customer"), _("Level"), _("Channel"), _("Status"), _("Due")):
        table.add_column(col)
    for r in frame.iter_rows(named=True):
        status_text = r["status"] + (f" ({r['requires_approval_by']})"
                                     if r["status"] == "draft" else "")  # fmt: skip
        table.add_row(str(r["id"]), r["as_of"].isoformat(), escape(r["customer_code"]),
                      r["level_code"], r["channel"], status_text,
                      _money(r["total_due_minor"], r["currency"]))  # fmt: skip
    console.print(table)


@dunning_app.command("timeline")
def timeline_cmd(
    customer: str = typer.Argument(..., help="Customer code."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Everything that happened to a customer, in order."""
    from encours.collections.actions import timeline

    frame = _action(timeline, customer)
    if as_json:
        print_json(frame.to_dicts())
        return
    table = Table(title=_("Timeline of {code}").format(code=escape(customer)))
    for col in (_("Day"), _("Kind"), _("Actor"), _("Summary")):
        table.add_column(col)
    for r in frame.iter_rows(named=True):
        table.add_row(r["day"].isoformat(), r["kind"], escape(r["actor"]), escape(r["summary"]))
    console.print(table)


@dunning_app.command("tasks")
def tasks_cmd(
    collector: str | None = typer.Option(None, "--collector"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Open call tasks (the collectors' worklist)."""
    from encours.collections.tasks import open_tasks

    frame = _action(open_tasks, collector)
    if as_json:
        print_json(frame.to_dicts())
        return
    table = Table(title=_("Open tasks"))
    for col in ("id", _("Due"), _("Collector"), _("Customer"), _("Note")):
        table.add_column(col)
    for r in frame.iter_rows(named=True):
        table.add_row(str(r["id"]), r["due_day"].isoformat(), escape(r["assignee"] or "-"),
                      escape(r["customer_code"]), escape(r["note"] or ""))  # fmt: skip
    console.print(table)


# --- policies ---------------------------------------------------------------------------


@policy_app.command("list")
def policy_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """The policies, their levels and the assignments."""
    from encours.collections import policies

    def read(conn):  # noqa: ANN001, ANN202
        return policies.list_policies(conn), policies.assignments_table(conn)

    found, assignments = _action(read)
    if as_json:
        print_json({
            "policies": [{**policies.policy_dict(p), "default": d} for p, d in found],
            "assignments": assignments.to_dicts(),
        })  # fmt: skip
        return
    table = Table(title=_("Dunning policies"))
    for col in (_("Policy"), _("Default"), _("Levels")):
        table.add_column(col)
    for policy, is_default in found:
        levels = ", ".join(f"{lv.code} (D{lv.days:+d}, {lv.channel})" for lv in policy.levels)
        table.add_row(policy.code, "*" if is_default else "", levels)
    console.print(table)
    for r in assignments.iter_rows(named=True):
        console.print(escape(f"{r['scope']} {r['key']} -> {r['policy_code']}"))


@policy_app.command("show")
def policy_show(
    code: str = typer.Argument(..., help="Policy code."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One policy's levels."""
    from encours.collections import policies

    policy = _action(policies.get_policy, code)
    if policy is None:
        fail_input(_("unknown policy {code!r}").format(code=code))
    if as_json:
        print_json(policies.policy_dict(policy))
        return
    table = Table(title=f"{policy.code}: {escape(policy.name)}")
    for col in (_("Level"), _("Days"), _("Channel"), _("Template"), _("Penalties"),
                _("Indemnity"), _("Minimum"), _("Approval")):  # fmt: skip
        table.add_column(col)
    for lv in policy.levels:
        table.add_row(lv.code, f"{lv.days:+d}", lv.channel, lv.template,
                      "x" if lv.claim_penalties else "", "x" if lv.claim_indemnity else "",
                      str(from_minor(lv.min_overdue_minor, "EUR")),
                      lv.approval_role or "")  # fmt: skip
    console.print(table)


@policy_app.command("assign")
def policy_assign(
    policy: str = typer.Argument(..., help="Policy code (ignored with --remove)."),
    segment: str | None = typer.Option(None, "--segment"),
    risk_class: str | None = typer.Option(None, "--risk-class"),
    customer: str | None = typer.Option(None, "--customer", help="Customer code (override)."),
    remove: bool = typer.Option(False, "--remove", help="Remove the assignment."),
) -> None:
    """Assign a policy to a segment, a risk class or one customer."""
    from encours.collections import policies

    given = [(s, k) for s, k in (("segment", segment), ("risk_class", risk_class),
                                 ("customer", customer)) if k is not None]  # fmt: skip
    if len(given) != 1:
        context.fail_usage(_("give one of --segment, --risk-class, --customer"))
    scope, key = given[0]

    def do(conn):  # noqa: ANN001, ANN202
        if scope == "customer":
            from encours.collections.actions import customer_by_code

            customer_by_code(conn, key)
        policies.assign(conn, scope, key, None if remove else policy, _actor())

    _action(do)
    console.print(_("{scope} {key}: policy {policy}").format(
        scope=scope, key=escape(key), policy="-" if remove else policy))  # fmt: skip


@policy_app.command("level")
def policy_level(
    policy: str = typer.Argument(..., help="Policy code."),
    level: str = typer.Argument(..., help="Level code (added when new)."),
    days: int | None = typer.Option(None, "--days", help="Days relative to the due date."),
    channel: str | None = typer.Option(None, "--channel", help="email, letter or phone."),
    template: str | None = typer.Option(None, "--template"),
    penalties: bool | None = typer.Option(None, "--penalties/--no-penalties"),
    indemnity: bool | None = typer.Option(None, "--indemnity/--no-indemnity"),
    minimum: str | None = typer.Option(None, "--minimum", help="Minimum net amount due."),
    approval: str | None = typer.Option(
        None, "--approval", help="credit_manager, sales or none."
    ),  # fmt: skip
    remove: bool = typer.Option(False, "--remove", help="Remove the level."),
) -> None:
    """Edit (or add, or remove) one level of a policy."""
    import dataclasses

    from encours.collections import policies
    from encours.domain.dunning import Level, PolicyError
    from encours.money import MoneyError, to_minor

    def do(conn):  # noqa: ANN001, ANN202
        current = policies.get_policy(conn, policy)
        if current is None:
            raise PolicyError(_("unknown policy {code!r}").format(code=policy))
        levels = [lv for lv in current.levels if lv.code != level]
        if not remove:
            old = next((lv for lv in current.levels if lv.code == level), None)
            if old is None and (days is None or channel is None):
                raise PolicyError(_("a new level needs --days and --channel"))
            base = old or Level(level, days or 0, channel or "email", template or level)
            changes: dict = {}
            for name, value in (("days", days), ("channel", channel), ("template", template),
                                ("claim_penalties", penalties),
                                ("claim_indemnity", indemnity)):  # fmt: skip
                if value is not None:
                    changes[name] = value
            if minimum is not None:
                try:
                    changes["min_overdue_minor"] = to_minor(minimum.replace(",", "."), "EUR")
                except MoneyError as exc:
                    raise PolicyError(str(exc)) from exc
            if approval is not None:
                changes["approval_role"] = None if approval == "none" else approval
            levels.append(dataclasses.replace(base, **changes))
        levels.sort(key=lambda lv: lv.days)
        policies.save_policy(conn, dataclasses.replace(current, levels=tuple(levels)), _actor())

    _action(do)
    console.print(_("Policy {code} saved").format(code=policy))


def register(app: typer.Typer) -> None:
    app.add_typer(dunning_app, name="dunning")
