"""`encours insolvency ...`: record a customer's collective insolvency proceedings."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.markup import escape

from encours.cli import context
from encours.cli.context import cli_actor, console, parse_day, print_json, state
from encours.i18n import N_, _

insolvency_app = typer.Typer(
    help=N_(
        "Collective insolvency proceedings of a customer (sauvegarde, redressement, "
        "liquidation): no penalties nor indemnity, the claim to declare."
    ),
    no_args_is_help=True,
)


def _fail_input(message: str) -> NoReturn:
    context.fail_input(escape(message))


def _run(fn, *args: Any) -> dict[str, Any]:  # noqa: ANN001
    """Run a use case in one unit of work; its errors are invalid input (exit 1)."""
    from encours.risk.insolvency import InsolvencyError
    from encours.store.db import unit_of_work

    try:
        with unit_of_work(state.db_url) as conn:
            return fn(conn, *args)
    except InsolvencyError as exc:
        _fail_input(str(exc))


@insolvency_app.command(
    "declare",
    help=N_(
        "Record the judgment opening insolvency proceedings: the customer owes no penalties "
        "nor indemnity any more, and a task to declare the claim to the mandataire "
        "judiciaire is created, due 2 months after the judgment."
    ),
)
def declare_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    date: str = typer.Option(..., "--date", help=N_("Day of the judgment (YYYY-MM-DD).")),
    kind: str = typer.Option(..., "--kind", help=N_("sauvegarde, redressement or liquidation.")),
    as_json: bool = typer.Option(False, "--json", help=N_("Print the result as JSON.")),
) -> None:
    from encours.risk.insolvency import declare_insolvency

    result = _run(declare_insolvency, customer, parse_day(date, "--date"), kind, cli_actor())
    if as_json:
        print_json(result)
        return
    if not result["changed"]:
        console.print(
            escape(_("Customer {code}: already recorded, nothing changed").format(code=customer))
        )
        return
    console.print(escape(
        _("Customer {code} in {kind} since {date}; declare the claim by {due} (task {task})")
        .format(code=customer, kind=result["insolvency_kind"], date=result["insolvency_date"],
                due=result["task_due"], task=result["task_id"])
    ))  # fmt: skip


@insolvency_app.command("end", help=N_("Record the end of the customer's insolvency proceedings."))
def end_cmd(
    customer: str = typer.Argument(..., help=N_("Customer code.")),
    date: str = typer.Option(..., "--date", help=N_("Day the proceedings ended (YYYY-MM-DD).")),
    as_json: bool = typer.Option(False, "--json", help=N_("Print the result as JSON.")),
) -> None:
    from encours.risk.insolvency import end_insolvency

    result = _run(end_insolvency, customer, parse_day(date, "--date"), cli_actor())
    if as_json:
        print_json(result)
        return
    console.print(escape(
        _("Customer {code}: insolvency proceedings ended on {date}").format(
            code=customer, date=result["ended_on"])
    ))  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(insolvency_app, name="insolvency")
