"""`encours dunning ...`: runs, the outbox, collectors' actions and policies."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from encours.cli import context
from encours.cli.context import (
    cli_actor,
    console,
    err_console,
    parse_as_of,
    parse_day,
    print_json,
    state,
)
from encours.company import require_company
from encours.i18n import N_, _
from encours.money import from_minor

dunning_app = typer.Typer(
    help=N_("Dunning: policies, runs, promises, disputes, holds, calls, payment plans."),
    no_args_is_help=True,
)
policy_app = typer.Typer(help=N_("Dunning policies and their assignment."), no_args_is_help=True)
dunning_app.add_typer(policy_app, name="policy")


def fail_input(message: str) -> NoReturn:
    context.fail_input(escape(message))


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


@dunning_app.command(
    "run",
    help=N_(
        "Decide what to send as of the day and create the communications (one "
        "transaction).\n\nA message whose template fails is not created; the others are, "
        "and the errors are listed (exit code 1). Running again for the same day "
        "creates nothing new."
    ),
)
def run_cmd(
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the run (default today).")),
    dry_run: bool = typer.Option(False, "--dry-run", help=N_("Print the plan, write nothing.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
    template_dir: Path | None = typer.Option(
        None,
        "--template-dir",
        help=N_("Templates overriding the shipped ones (ENCOURS_TEMPLATE_DIR)."),
    ),
    deadline_days: int = typer.Option(
        8, "--deadline-days", min=1, help=N_("Days given to pay by a formal notice.")
    ),
) -> None:
    require_company(strict=False)  # drafts may be previewed: warn only
    from encours.collections.engine import run_dunning
    from encours.collections.templates import Renderer

    day = parse_as_of(as_of)
    renderer = Renderer(template_dir)
    with _uow() as conn:
        result = run_dunning(conn, day, dry_run=dry_run, actor=cli_actor(), renderer=renderer,
                             deadline_days=deadline_days)  # fmt: skip
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
                    _("Invoices"), _("Amount due"), _("Penalties"), _("Indemnities")):  # fmt: skip
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
        for warning in result.warnings:
            err_console.print(
                "[yellow]" + escape(_("Warning: {message}").format(message=warning)) + "[/yellow]"
            )
    for error in result.errors:
        err_console.print(
            escape(_("Not created: {customer} {level}: {template}: {message}").format(
                customer=error.customer_code, level=error.level_code,
                template=error.template, message=error.message,
            ))
        )  # fmt: skip
    if result.errors:
        raise typer.Exit(context.EXIT_INVALID_INPUT)


@dunning_app.command(
    "send",
    help=N_(
        "Deliver the approved communications (email, letters). Exit code 1 when messages "
        "failed permanently."
    ),
)
def send_cmd(
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day (default today).")),
    out_dir: Path = typer.Option(
        Path("outbox"), "--out-dir", "--out", help=N_("Where letters are written.")
    ),
    limit: int | None = typer.Option(None, "--limit", help=N_("At most N per channel.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    require_company()  # real customers: refuse without the company settings
    from encours.cli.documents_cmd import print_send_report
    from encours.collections.outbox import send_pending

    report = send_pending(state.db_url, parse_as_of(as_of), out_dir, limit=limit,
                          actor=cli_actor())  # fmt: skip
    print_send_report(report, as_json)


# --- actions ----------------------------------------------------------------------------


@dunning_app.command(
    "promise", help=N_("Record a promise to pay: dunning pauses until the date + grace days.")
)
def promise_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    date: str = typer.Option(..., "--date", help=N_("Promised payment date.")),
    amount: str = typer.Option(..., "--amount", help=N_("Promised amount.")),
    grace: int = typer.Option(3, "--grace", help=N_("Grace days after the promised date.")),
    note: str | None = typer.Option(None, "--note", help=N_("Free text note.")),
    as_of: str | None = typer.Option(
        None, "--as-of", help=N_("Day of the promise (default today).")
    ),
) -> None:
    from encours.collections.actions import record_promise

    promised = parse_day(date, "--date")
    try:
        Decimal(amount.replace(",", "."))
    except ArithmeticError:
        fail_input(_("invalid amount {amount!r}").format(amount=amount))
    promise_id = _action(record_promise, customer, promised, amount, parse_as_of(as_of),
                         cli_actor(), grace_days=grace, note=note)  # fmt: skip
    console.print(_("Promise {id} recorded").format(id=promise_id))


@dunning_app.command(
    "dispute", help=N_("Dispute an invoice (left out of dunning) or resolve its dispute.")
)
def dispute_cmd(
    invoice: str = typer.Argument(..., help=N_("Invoice number.")),
    reason: str = typer.Option("", "--reason", help=N_("Reason (or resolution with --resolve).")),
    resolve: bool = typer.Option(False, "--resolve", help=N_("Resolve the invoice's dispute.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day (default today).")),
) -> None:
    from encours.collections.actions import open_dispute, resolve_dispute

    day = parse_as_of(as_of)
    if resolve:
        _action(resolve_dispute, invoice, reason, day, cli_actor())
        console.print(_("Dispute on invoice {number} resolved").format(number=invoice))
    else:
        _action(open_dispute, invoice, reason, day, cli_actor())
        console.print(_("Invoice {number} disputed").format(number=invoice))


@dunning_app.command("hold", help=N_("Do not dun a customer until a day (a reason is required)."))
def hold_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    reason: str = typer.Option(..., "--reason", help=N_("Why the customer is not dunned.")),
    until: str = typer.Option(..., "--until", help=N_("Last day of the hold.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("First day (default today).")),
) -> None:
    from encours.collections.actions import add_hold

    _action(
        add_hold, customer, reason, parse_day(until, "--until"), parse_as_of(as_of), cli_actor()
    )
    console.print(_("Customer {code} on hold until {date}").format(code=customer, date=until))


@dunning_app.command(
    "call", help=N_("Record a call's outcome (closes the customer's open call tasks).")
)
def call_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    outcome: str = typer.Option(
        ..., "--outcome", help=N_("reached, promised, disputed, no_answer.")
    ),
    note: str | None = typer.Option(None, "--note", help=N_("Free text note.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day (default today).")),
) -> None:
    from encours.collections.actions import record_call

    closed = _action(record_call, customer, outcome, parse_as_of(as_of), cli_actor(), note)
    console.print(_("Call recorded ({count} tasks closed)").format(count=len(closed)))


@dunning_app.command(
    "plan", help=N_("Agree a payment plan; dunning follows it instalment by instalment.")
)
def plan_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    instalment: list[str] = typer.Option(..., "--instalment", help=N_("DATE:AMOUNT, repeatable.")),
    grace: int = typer.Option(3, "--grace", help=N_("Grace days after each instalment.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day of the plan (default today).")),
) -> None:
    from encours.collections.actions import create_plan

    rows = []
    for value in instalment:
        day, sep, amount = value.partition(":")
        if not sep:
            fail_input(_("--instalment: {value!r} is not DATE:AMOUNT").format(value=value))
        rows.append((parse_day(day, "--instalment"), amount))
    plan_id = _action(
        create_plan, customer, rows, parse_as_of(as_of), cli_actor(), grace_days=grace
    )
    console.print(_("Payment plan {id} recorded").format(id=plan_id))


@dunning_app.command(
    "approve", help=N_("Approve the drafts waiting for a role (one customer's, or --all).")
)
def approve_cmd(
    role: str = typer.Option(..., "--as", help=N_("Approving role: credit_manager or sales.")),
    customer: str | None = typer.Option(None, "--customer", help=N_("Customer code.")),
    all_: bool = typer.Option(False, "--all", help=N_("Every draft waiting for the role.")),
    as_of: str | None = typer.Option(None, "--as-of", help=N_("Day (default today).")),
) -> None:
    from encours.collections.actions import approve

    if (customer is None) == (not all_):
        context.fail_usage(_("give either --customer or --all"))
    ids = _action(approve, role, cli_actor(), parse_as_of(as_of), customer)
    console.print(_("{count} communications approved").format(count=len(ids)))


@dunning_app.command("list", help=N_("The communications (newest first)."))
def list_cmd(
    status: str | None = typer.Option(None, "--status", help=N_("draft, approved, sent, ...")),
    customer: str | None = typer.Option(None, "--customer", help=N_("Customer code.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    from encours.collections.actions import list_communications

    frame = _action(list_communications, status, customer)
    if as_json:
        print_json(frame.to_dicts())
        return
    table = Table(title=_("Communications"))
    for col in ("id", _("Day"), _("Customer"), _("Level"), _("Channel"), _("Status"),
                _("Amount due")):  # fmt: skip
        table.add_column(col)
    for r in frame.iter_rows(named=True):
        status_text = r["status"] + (f" ({r['requires_approval_by']})"
                                     if r["status"] == "draft" else "")  # fmt: skip
        table.add_row(str(r["id"]), r["as_of"].isoformat(), escape(r["customer_code"]),
                      r["level_code"], r["channel"], status_text,
                      _money(r["total_due_minor"], r["currency"]))  # fmt: skip
    console.print(table)


@dunning_app.command("timeline", help=N_("Everything that happened to a customer, in order."))
def timeline_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
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


@dunning_app.command("tasks", help=N_("Open call tasks (the collectors' worklist)."))
def tasks_cmd(
    collector: str | None = typer.Option(
        None, "--collector", help=N_("Only this collector's tasks.")
    ),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
    from encours.collections.tasks import open_tasks

    frame = _action(open_tasks, collector)
    if as_json:
        print_json(frame.to_dicts())
        return
    table = Table(title=_("Open tasks"))
    for col in ("id", _("Due date"), _("Collector"), _("Customer"), _("Note")):
        table.add_column(col)
    for r in frame.iter_rows(named=True):
        table.add_row(str(r["id"]), r["due_day"].isoformat(), escape(r["assignee"] or "-"),
                      escape(r["customer_code"]), escape(r["note"] or ""))  # fmt: skip
    console.print(table)


# --- policies ---------------------------------------------------------------------------


@policy_app.command("list", help=N_("The policies, their levels and the assignments."))
def policy_list(as_json: bool = typer.Option(False, "--json", help=N_("JSON output."))) -> None:
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


@policy_app.command("show", help=N_("One policy's levels."))
def policy_show(
    code: str = typer.Argument(..., help=N_("Policy code.")),
    as_json: bool = typer.Option(False, "--json", help=N_("JSON output.")),
) -> None:
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


@policy_app.command(
    "assign", help=N_("Assign a policy to a segment, a risk class or one customer.")
)
def policy_assign(
    policy: str = typer.Argument(..., help=N_("Policy code (ignored with --remove).")),
    segment: str | None = typer.Option(None, "--segment", help=N_("Customer segment.")),
    risk_class: str | None = typer.Option(None, "--risk-class", help=N_("Risk class.")),
    customer: str | None = typer.Option(None, "--customer", help=N_("Customer code (override).")),
    remove: bool = typer.Option(False, "--remove", help=N_("Remove the assignment.")),
) -> None:
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
        policies.assign(conn, scope, key, None if remove else policy, cli_actor())

    _action(do)
    console.print(_("{scope} {key}: policy {policy}").format(
        scope=scope, key=escape(key), policy="-" if remove else policy))  # fmt: skip


@policy_app.command("level", help=N_("Edit (or add, or remove) one level of a policy."))
def policy_level(
    policy: str = typer.Argument(..., help=N_("Policy code.")),
    level: str = typer.Argument(..., help=N_("Level code (added when new).")),
    days: int | None = typer.Option(None, "--days", help=N_("Days relative to the due date.")),
    channel: str | None = typer.Option(None, "--channel", help=N_("email, letter or phone.")),
    template: str | None = typer.Option(None, "--template", help=N_("Template of the message.")),
    penalties: bool | None = typer.Option(
        None,
        "--penalties/--no-penalties",
        help=N_("Claim the late-payment penalties at this level."),
    ),
    indemnity: bool | None = typer.Option(
        None,
        "--indemnity/--no-indemnity",
        help=N_("Claim the 40 EUR fixed indemnity at this level."),
    ),
    minimum: str | None = typer.Option(None, "--minimum", help=N_("Minimum net amount due.")),
    approval: str | None = typer.Option(
        None, "--approval", help=N_("credit_manager, sales or none.")
    ),  # fmt: skip
    remove: bool = typer.Option(False, "--remove", help=N_("Remove the level.")),
) -> None:
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
        policies.save_policy(conn, dataclasses.replace(current, levels=tuple(levels)), cli_actor())

    _action(do)
    console.print(_("Policy {code} saved").format(code=policy))


def register(app: typer.Typer) -> None:
    app.add_typer(dunning_app, name="dunning")
