"""`encours risk ...` (onboarding, statements, classes, reviews, limits, ECL) and
`encours check order`: thin commands over the use cases of `encours.risk`."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from encours.cli.context import (
    console,
    err_console,
    fail_input,
    fail_usage,
    parse_as_of,
    print_json,
    state,
)
from encours.i18n import N_, _

AS_OF_HELP = "Day of the evaluation (YYYY-MM-DD, default today)."


def _actor(by: str | None) -> str:
    return by or os.environ.get("ENCOURS_USER") or getpass.getuser()


NO_LIMIT_WORDS = ("none", "aucune", "aucun")


def _amount(value: str, option: str) -> Decimal:
    try:
        amount = Decimal(value.replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        fail_usage(_("{option}: {value!r} is not an amount").format(option=option, value=value))
    if not amount.is_finite():
        fail_usage(_("{option}: {value!r} is not an amount").format(option=option, value=value))
    return amount


def _date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail_usage(_("{option}: {value!r} is not a date (expected YYYY-MM-DD)").format(
            option=option, value=value))  # fmt: skip


def _customer_id(conn, code: str) -> int:  # noqa: ANN001
    from encours.risk.limits import find_customer

    try:
        return find_customer(conn, code)["id"]
    except LookupError as exc:
        fail_input(str(exc))


def _print_table(title: str, columns: list[str], rows: list[list[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def register(app: typer.Typer) -> None:  # noqa: C901, PLR0915
    risk_app = typer.Typer(help=N_("Credit risk: onboarding, statements, classes, limits, ECL."),
                           no_args_is_help=True)  # fmt: skip
    statements_app = typer.Typer(
        help=N_("Financial statements of customers."), no_args_is_help=True
    )
    limit_app = typer.Typer(help=N_("Credit limits: recommendation and change requests."),
                            no_args_is_help=True)  # fmt: skip
    check_app = typer.Typer(help=N_("Credit checks."), no_args_is_help=True)

    # --- onboarding -------------------------------------------------------------------
    @risk_app.command(
        "onboard",
        help=N_("Onboard a new customer: identifiers, checklist, initial class and limit."),
    )
    def onboard(
        code: str = typer.Argument(..., help=N_("The customer's code.")),
        name: str = typer.Option(..., "--name"),
        siren: str | None = typer.Option(None, "--siren"),
        siret: str | None = typer.Option(None, "--siret"),
        vat: str | None = typer.Option(None, "--vat"),
        legal_form: str | None = typer.Option(None, "--legal-form"),
        created: str | None = typer.Option(None, "--created", help=N_("Date of creation.")),
        sector: str | None = typer.Option(None, "--sector", help=N_("NAF code or sector.")),
        country: str = typer.Option("FR", "--country"),
        checklist: str = typer.Option(
            "",
            "--checklist",
            help=N_(
                "Done items: contract,payment_terms,penalty_clause,retention_of_title,"
                "deposit_decided."
            ),
        ),
        currency: str = typer.Option("EUR", "--currency"),
        terms: str = typer.Option("30 days net", "--terms", help=N_("Payment terms.")),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        by: str | None = typer.Option(None, "--by", help=N_("Who does it (audit).")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.classes import reasons_text
        from encours.risk.onboarding import OnboardingError, onboard_customer
        from encours.store.db import unit_of_work

        items = [i.strip() for i in checklist.split(",") if i.strip()]
        try:
            with unit_of_work(state.db_url) as conn:
                result = onboard_customer(
                    conn, code, name, siren=siren, siret=siret, vat_number=vat,
                    legal_form=legal_form, created=_date(created, "--created"), sector=sector,
                    country=country, checklist=items, currency=currency, payment_terms=terms,
                    as_of=parse_as_of(as_of), actor=_actor(by),
                )  # fmt: skip
        except OnboardingError as exc:
            for problem in exc.problems:
                err_console.print(f"[red]{problem}[/red]")
            raise typer.Exit(1) from None
        if as_json:
            print_json(result.as_dict())
            return
        console.print(_("{code}: class {risk_class}, credit limit {limit} {currency}, next "
                        "review {review}").format(
            code=code, risk_class=result.risk_class, limit=result.credit_limit,
            currency=result.currency, review=result.review_date))  # fmt: skip
        for line in reasons_text(result.reasons):
            console.print(f"  - {line}")

    # --- statements -------------------------------------------------------------------
    @statements_app.command(
        "import", help=N_("Import financial statements (one row per customer and year; replaces).")
    )
    def statements_import(
        file: Path = typer.Argument(..., help=N_("CSV of financial statements.")),
        by: str | None = typer.Option(None, "--by", help=N_("Who does it (audit).")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.imports.encoding import EncodingError
        from encours.risk.statements import StatementsRejected, import_statements
        from encours.store.db import unit_of_work

        if not file.is_file():
            fail_input(_("File not found: {file}").format(file=file))
        try:
            with unit_of_work(state.db_url) as conn:
                report = import_statements(conn, file, actor=_actor(by))
        except StatementsRejected as exc:
            if as_json:
                print_json({"status": "rejected", "errors": [str(e) for e in exc.errors]})
            else:
                typer.echo(_("{file}: rejected, nothing was imported ({n} error(s)):").format(
                    file=file, n=len(exc.errors)), err=True)  # fmt: skip
                for error in exc.errors:
                    typer.echo(f"  {error}", err=True)
            raise typer.Exit(1) from None
        except EncodingError as exc:
            fail_input(str(exc))
        if as_json:
            print_json({"status": "ok", "rows": report.rows, "inserted": report.inserted,
                        "replaced": report.replaced})  # fmt: skip
            return
        console.print(_("{file}: {inserted} new, {replaced} replaced").format(
            file=file.name, inserted=report.inserted, replaced=report.replaced))  # fmt: skip

    @statements_app.command(
        "add",
        help=N_(
            "Enter one financial statement of a customer (amounts in major units; a line "
            "not given stays unknown, never 0); replaces that year (audited)."
        ),
    )
    def statements_add(
        code: str = typer.Argument(..., help=N_("The customer's code.")),
        year: int = typer.Option(..., "--year", help=N_("Financial year.")),
        revenue: str | None = typer.Option(None, "--revenue", help=N_("Revenue.")),
        equity: str | None = typer.Option(None, "--equity", help=N_("Equity.")),
        fields: list[str] = typer.Option(
            [], "--field", help=N_("Another line as name=value (repeatable), e.g. ebit=120000.")
        ),
        period_end: str | None = typer.Option(
            None, "--period-end", help=N_("End of the financial year (default 31 December).")
        ),
        currency: str | None = typer.Option(
            None, "--currency", help=N_("Currency (default the customer's).")
        ),
        by: str | None = typer.Option(None, "--by", help=N_("Who does it (audit).")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.money import MoneyError
        from encours.risk.statements import save_statement
        from encours.store.db import unit_of_work
        from encours.store.risk_schema import STATEMENT_FIELDS

        amounts: dict[str, Decimal | int | str | None] = {}
        given: list[tuple[str, str | None, str]] = [
            ("revenue", revenue, "--revenue"), ("equity", equity, "--equity")]  # fmt: skip
        for item in fields:
            line, sep, text = item.partition("=")
            line = line.strip().lower()
            if not sep or line not in STATEMENT_FIELDS:
                fail_usage(_("--field {item!r}: expected name=value with a name among {names}")
                           .format(item=item, names=", ".join(STATEMENT_FIELDS)))  # fmt: skip
            given.append((line, text, "--field " + line))
        for line, value, option in given:
            if value is not None and value.strip():
                amounts[line] = _amount(value, option)
        if not amounts:
            fail_usage(_("give at least one amount (--revenue, --equity or --field)"))
        end = _date(period_end, "--period-end")
        try:
            with unit_of_work(state.db_url) as conn:
                _customer_id(conn, code)
                replaced = save_statement(conn, code, year, amounts, period_end=end,
                                          currency=currency, actor=_actor(by))  # fmt: skip
        except (MoneyError, ValueError) as exc:
            fail_input(str(exc))
        if as_json:
            print_json({"status": "ok", "customer": code, "fiscal_year": year,
                        "replaced": replaced,
                        "amounts": {k: str(v) for k, v in amounts.items()}})  # fmt: skip
            return
        message = _("{code}: financial year {year} replaced") if replaced else \
            _("{code}: financial year {year} saved")  # fmt: skip
        console.print(message.format(code=code, year=year))

    @statements_app.command(
        "show",
        help=N_("A customer's statements: ratios, Altman Z'' and Conan-Holder with their zones."),
    )
    def statements_show(
        code: str = typer.Argument(...),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.statements import customer_statements
        from encours.store.db import unit_of_work

        with unit_of_work(state.db_url) as conn:
            evaluations = customer_statements(conn, _customer_id(conn, code))
        payload: list[dict[str, Any]] = []
        for ev in evaluations:
            payload.append({
                "fiscal_year": ev.fiscal_year, "currency": ev.currency,
                "scores": {s.name: {"score": None if s.score is None else str(s.rounded()),
                                    "zone": s.zone, "missing": list(s.missing),
                                    "ratios": {k: None if v is None else str(round(v, 4))
                                               for k, v in s.ratios.items()}}
                           for s in (ev.altman, ev.conan_holder)},
                "ratios": {k: None if v is None else str(v)
                           for k, v in ev.ratios.rounded().items()},
                "missing_lines": list(ev.missing_lines),
            })  # fmt: skip
        if as_json:
            print_json(payload)
            return
        if not payload:
            console.print(_("No financial statements for {code}").format(code=code))
        for item in payload:
            rows = [[name, s["score"] or "-", s["zone"] or "-", ", ".join(s["missing"])]
                    for name, s in item["scores"].items()]  # fmt: skip
            rows += [[k, v or "-", "", ""] for k, v in item["ratios"].items()]
            _print_table(_("{code}: financial year {year}").format(
                code=code, year=item["fiscal_year"]),
                [_("item"), _("value"), _("zone"), _("missing")], rows)  # fmt: skip

    # --- classes ----------------------------------------------------------------------
    @risk_app.command(
        "assess", help=N_("Compute and store the risk class of every customer (history kept).")
    )
    def assess_cmd(
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        customer: str | None = typer.Option(None, "--customer", help=N_("One customer's code.")),
        by: str | None = typer.Option(None, "--by", help=N_("Who does it (audit).")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.classes import assess
        from encours.store.db import unit_of_work

        day = parse_as_of(as_of)
        with unit_of_work(state.db_url) as conn:
            customer_id = _customer_id(conn, customer) if customer else None
            frame = assess(conn, day, customer_id=customer_id, actor=_actor(by))
        counts = {c: int(n) for c, n in frame.group_by("risk_class").len().sort(
            "risk_class").iter_rows()}  # fmt: skip
        changed = int(
            frame.filter(
                frame["previous_class"].is_not_null()
                & (frame["previous_class"] != frame["risk_class"])
            ).height
        )
        if as_json:
            print_json({"as_of": day.isoformat(), "customers": frame.height,
                        "classes": counts, "changed": changed})  # fmt: skip
            return
        console.print(_("{n} customers assessed as of {day}; {changed} class change(s)").format(
            n=frame.height, day=day, changed=changed))  # fmt: skip
        _print_table(_("Risk classes"), [_("class"), _("customers")],
                     [[c, n] for c, n in counts.items()])  # fmt: skip

    @risk_app.command(
        "show", help=N_("A customer's class history, latest reasons and payment scorecard.")
    )
    def show(
        code: str = typer.Argument(...),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.behaviour import behaviour_features, explain, score_features
        from encours.risk.classes import history, reasons_text
        from encours.store.db import unit_of_work

        day = parse_as_of(as_of)
        with unit_of_work(state.db_url) as conn:
            customer_id = _customer_id(conn, code)
            rows = [r for r in history(conn, customer_id) if r["as_of"] <= day]
            scored = score_features(behaviour_features(conn, day))
        card = scored.filter(scored["customer_id"] == customer_id).row(0, named=True)
        lines = explain(card)
        latest = rows[-1] if rows else None
        payload = {
            "customer": code,
            "risk_class": latest["risk_class"] if latest else None,
            "review_date": latest["review_date"].isoformat() if latest else None,
            "reasons": reasons_text(latest["reasons"]) if latest else [],
            "history": [{"as_of": r["as_of"].isoformat(), "risk_class": r["risk_class"]}
                        for r in rows],
            "scorecard": lines,
            "behaviour_points": card["behaviour_points"],
        }  # fmt: skip
        if as_json:
            print_json(payload)
            return
        console.print(_("{code}: class {risk_class}, next review {review}").format(
            code=code, risk_class=payload["risk_class"] or "-",
            review=payload["review_date"] or "-"))  # fmt: skip
        for line in payload["reasons"]:
            console.print(f"  - {line}")
        _print_table(_("Payment scorecard"), [_("feature"), _("value"), _("bin"), _("points")],
                     [[x["feature"], x["value"], x["bin"], f"{x['points']}/{x['max_points']}"]
                      for x in lines])  # fmt: skip

    @risk_app.command(
        "review", help=N_("Regular credit reviews: `--due` lists them, `--done CODE` records one.")
    )
    def review(
        due: bool = typer.Option(
            False, "--due", help=N_("List the customers whose review is due.")
        ),
        done: str | None = typer.Option(
            None, "--done", help=N_("Record the review of a customer.")
        ),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        by: str | None = typer.Option(None, "--by"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.classes import record_review, reviews_due
        from encours.store.db import unit_of_work

        day = parse_as_of(as_of)
        if not due and not done:
            fail_usage(_("give --due or --done CODE"))
        if done:
            with unit_of_work(state.db_url) as conn:
                try:
                    next_review = record_review(conn, _customer_id(conn, done), day, _actor(by))
                except LookupError as exc:
                    fail_input(str(exc))
            console.print(_("{code}: next review {review}").format(code=done, review=next_review))
            if not due:
                return
        with unit_of_work(state.db_url) as conn:
            frame = reviews_due(conn, day)
        if as_json:
            print_json(frame.to_dicts())
            return
        _print_table(_("Reviews due as of {day}").format(day=day),
                     [_("customer"), _("name"), _("class"), _("review date"), _("days late")],
                     [[r["code"], r["name"], r["risk_class"], r["review_date"],
                       r["days_overdue"]] for r in frame.iter_rows(named=True)])  # fmt: skip

    # --- limits -----------------------------------------------------------------------
    @limit_app.command(
        "recommend", help=N_("The policy's credit limit for a customer, with its reasons.")
    )
    def limit_recommend(
        code: str = typer.Argument(...),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.limits import recommend_limit
        from encours.store.db import unit_of_work

        with unit_of_work(state.db_url) as conn:
            _customer_id(conn, code)
            rec = recommend_limit(conn, code, parse_as_of(as_of))
        if as_json:
            print_json(rec.as_dict())
            return
        console.print(_("{code}: recommended limit {amount} {currency} (current: {current})")
                      .format(code=code, amount=rec.recommended, currency=rec.currency,
                              current=rec.current if rec.current is not None else "-"))  # fmt: skip
        for line in rec.reasons:
            console.print(f"  - {line}")

    @limit_app.command(
        "request", help=N_("Ask for a new credit limit (approved by the credit manager).")
    )
    def limit_request(
        code: str = typer.Argument(...),
        amount: str = typer.Argument(
            ..., help=N_("New limit in the customer's currency, or `none` to remove the limit.")
        ),
        why: str | None = typer.Option(None, "--reason"),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        by: str | None = typer.Option(None, "--by"),
    ) -> None:
        from encours.risk.limits import LimitError, request_limit
        from encours.store.db import unit_of_work

        value = None if amount.strip().lower() in NO_LIMIT_WORDS else _amount(amount, "AMOUNT")
        try:
            with unit_of_work(state.db_url) as conn:
                _customer_id(conn, code)
                request_id = request_limit(conn, code, value, actor=_actor(by),
                                           as_of=parse_as_of(as_of), reason=why)  # fmt: skip
        except LimitError as exc:
            fail_input(exc.translated(_))
        console.print(_("Limit request #{id} created for {code}").format(id=request_id, code=code))

    def _decide(request_id: int, by: str | None, note: str | None, approve: bool) -> None:
        from encours.risk.limits import LimitError, approve_limit, reject_limit
        from encours.store.db import unit_of_work

        try:
            with unit_of_work(state.db_url) as conn:
                if approve:
                    approve_limit(conn, request_id, actor=_actor(by), note=note)
                else:
                    reject_limit(conn, request_id, actor=_actor(by), note=note)
        except LimitError as exc:
            fail_input(exc.translated(_))
        message = _("Limit request #{id} approved") if approve else \
            _("Limit request #{id} rejected")  # fmt: skip
        console.print(message.format(id=request_id))

    @limit_app.command(
        "approve",
        help=N_("Approve a limit request: the customer's credit limit changes (audited)."),
    )
    def limit_approve(
        request_id: int = typer.Argument(...),
        by: str | None = typer.Option(None, "--by"),
        note: str | None = typer.Option(None, "--note"),
    ) -> None:
        _decide(request_id, by, note, True)

    @limit_app.command("reject", help=N_("Reject a limit request."))
    def limit_reject(
        request_id: int = typer.Argument(...),
        by: str | None = typer.Option(None, "--by"),
        note: str | None = typer.Option(None, "--note"),
    ) -> None:
        _decide(request_id, by, note, False)

    @limit_app.command("list", help=N_("Limit requests (pending ones by default)."))
    def limit_list(
        all_requests: bool = typer.Option(False, "--all", help=N_("Decided requests too.")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.money import from_minor
        from encours.risk.limits import list_requests
        from encours.store.db import unit_of_work

        with unit_of_work(state.db_url) as conn:
            rows = list_requests(conn, None if all_requests else "pending")
        payload = [{
            "id": r["id"], "customer": r["code"], "status": r["status"],
            "current": None if r["current_minor"] is None
            else str(from_minor(r["current_minor"], r["currency"])),
            "requested": None if r["requested_minor"] is None
            else str(from_minor(r["requested_minor"], r["currency"])),
            "recommended": None if r["recommended_minor"] is None
            else str(from_minor(r["recommended_minor"], r["currency"])),
            "currency": r["currency"], "requested_by": r["requested_by"],
            "decided_by": r["decided_by"],
        } for r in rows]  # fmt: skip
        if as_json:
            print_json(payload)
            return
        _print_table(_("Limit requests"), ["#", _("customer"), _("status"), _("current"),
                                           _("requested"), _("recommended"), _("by")],
                     [[p["id"], p["customer"], p["status"], p["current"],
                       _("no limit") if p["requested"] is None else p["requested"],
                       p["recommended"], p["requested_by"]] for p in payload])  # fmt: skip

    # --- ECL --------------------------------------------------------------------------
    @risk_app.command(
        "ecl",
        help=N_("Expected credit loss: provision matrix from roll rates + individual provisions."),
    )
    def ecl(
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        months: int = typer.Option(12, "--months", help=N_("Months of history for roll rates.")),
        lgd: str = typer.Option("1", "--lgd", help=N_("Loss given default of the last bucket.")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.ecl import expected_credit_loss
        from encours.store.db import unit_of_work

        with unit_of_work(state.db_url) as conn:
            results = expected_credit_loss(conn, parse_as_of(as_of), months=months,
                                           lgd=_amount(lgd, "--lgd"))  # fmt: skip
        if as_json:
            print_json([r.as_dict() for r in results])
            return
        for result in results:
            _print_table(
                _("Provision matrix ({currency})").format(currency=result.currency),
                [_("bucket"), _("amount"), _("roll rate"), _("loss rate"), _("provision")],
                [[r["bucket"], r["amount"], r["roll_rate"], r["loss_rate"], r["provision"]]
                 for r in result.rows],
            )  # fmt: skip
            if result.individual:
                _print_table(_("Individual provisions ({currency})").format(
                    currency=result.currency),
                    [_("customer"), _("open"), _("rate %"), _("provision")],
                    [[r["customer"], r["open"], r["rate_percent"], r["provision"]]
                     for r in result.individual])  # fmt: skip
            console.print(_("Total provision: {total} {currency}").format(
                total=result.total_provision, currency=result.currency))  # fmt: skip

    @risk_app.command(
        "doubtful", help=N_("Mark a customer's receivables doubtful (individual provision).")
    )
    def doubtful(
        code: str = typer.Argument(...),
        rate: str | None = typer.Option(None, "--rate", help=N_("Percent to provide (0-100).")),
        clear: bool = typer.Option(False, "--clear", help=N_("No longer doubtful.")),
        by: str | None = typer.Option(None, "--by"),
    ) -> None:
        from encours.risk.ecl import set_doubtful
        from encours.store.db import unit_of_work

        if (rate is None) == (not clear):
            fail_usage(_("give --rate R or --clear"))
        value = None if clear else _amount(rate or "", "--rate")
        try:
            with unit_of_work(state.db_url) as conn:
                _customer_id(conn, code)
                set_doubtful(conn, code, value, _actor(by))
        except ValueError as exc:
            fail_input(str(exc))
        console.print(_("{code}: doubtful rate {rate}").format(code=code, rate=value or "-"))

    # --- order check ------------------------------------------------------------------
    @check_app.command(
        "order",
        help=N_("approve, warn or hold an order, with the reasons (logged for the monitoring)."),
    )
    def order(
        customer: str = typer.Option(..., "--customer", help=N_("The customer's code.")),
        amount: str = typer.Option(..., "--amount", help=N_("Order amount incl. VAT.")),
        as_of: str = typer.Option(None, "--as-of", help=N_(AS_OF_HELP)),
        no_record: bool = typer.Option(False, "--no-record",
                                       help=N_("What-if check: do not log it for the monitoring.")),
        by: str | None = typer.Option(None, "--by", help=N_("Who checks (default the user).")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:  # fmt: skip
        from encours.risk.monitor import check_and_record_order
        from encours.store.db import unit_of_work

        value = _amount(amount, "--amount")
        if value < 0:
            fail_input(_("--amount: {value} is negative: an order amount is expected").format(
                value=value))  # fmt: skip
        with unit_of_work(state.db_url) as conn:
            _customer_id(conn, customer)
            result, check_id = check_and_record_order(
                conn, customer, value, parse_as_of(as_of), _actor(by), record=not no_record
            )
        if as_json:
            print_json({**result.as_dict(), "order_check_id": check_id})
            return
        labels = {"approve": _("approve"), "warn": _("warn"), "hold": _("hold")}
        colour = {"approve": "green", "warn": "yellow", "hold": "red"}[result.decision]
        console.print(f"[bold {colour}]{labels[result.decision]}[/bold {colour}]")
        for line in result.reasons:
            console.print(f"  - {line}")
        console.print(
            json.dumps(
                {
                    k: v
                    for k, v in result.as_dict().items()
                    if k in ("exposure", "limit", "order", "headroom_after")
                }
            )
        )
        if check_id is None:
            console.print(_("What-if check: not logged"))

    risk_app.add_typer(statements_app, name="statements")
    risk_app.add_typer(limit_app, name="limit")
    app.add_typer(risk_app, name="risk")
    app.add_typer(check_app, name="check")
