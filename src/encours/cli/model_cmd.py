"""`encours model train|predict|report` (late-payment model) and `encours forecast`
(cash-in forecast and its backtest)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from encours.cli.context import console, fail_input, fail_usage, parse_as_of, print_json, state
from encours.i18n import N_, _

AS_OF_HELP = N_("Prediction day (YYYY-MM-DD, default today): only what was known before counts.")


def _kind(value: str) -> str:
    from encours.risk.model import KINDS

    if value not in KINDS:
        fail_usage(_("--kind must be one of: {kinds}").format(kinds=", ".join(KINDS)))
    return value


def register(app: typer.Typer) -> None:
    model_app = typer.Typer(help=N_("Late-payment model: train, predict, report."),
                            no_args_is_help=True)  # fmt: skip

    @model_app.command(
        "train", help=N_("Train on the invoices settled before the day and store the model.")
    )
    def train_cmd(
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        kind: str = typer.Option("lightgbm", "--kind", help=N_("lightgbm or logistic.")),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.model import train_model

        day = parse_as_of(as_of)
        try:
            result = train_model(state.db_url, day, _kind(kind))
        except ValueError as exc:
            fail_input(str(exc))
        if as_json:
            print_json(result)
            return
        console.print(
            _("Model {id} ({kind}) trained as of {as_of} on {rows} invoices in {seconds} s").format(
                id=result["id"], kind=kind, as_of=day.isoformat(),
                rows=result["metrics"]["train_rows"], seconds=result["metrics"]["train_seconds"],
            )
        )  # fmt: skip

    @model_app.command(
        "predict",
        help=N_("Score every open invoice: p_late, predicted days late and payment date."),
    )
    def predict_cmd(
        out: Path = typer.Option(..., "--out", help=N_("CSV file to write.")),
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        reasons: bool = typer.Option(False, "--reasons", help=N_("Add a top_reasons column.")),
    ) -> None:
        from encours.risk.model import PREDICTION_COLUMNS, predict

        day = parse_as_of(as_of)
        try:
            scored = predict(state.db_url, day, reasons=reasons)
        except LookupError:
            fail_input(_("No model trained as of {as_of}: run `encours model train` first.")
                       .format(as_of=day.isoformat()))  # fmt: skip
        columns = [*PREDICTION_COLUMNS, *(["top_reasons"] if reasons else [])]
        scored.select(columns).write_csv(out)
        console.print(_("Written {out}").format(out=out))

    @model_app.command(
        "report",
        help=N_("Time-split evaluation: AUC, Brier score, calibration, MAE, main drivers."),
    )
    def report_cmd(
        split: str = typer.Option(
            None, "--split", help=N_("Train on invoices issued before this day, test on the rest.")
        ),
        kind: str = typer.Option("lightgbm", "--kind"),
        without: list[str] = typer.Option(
            [],
            "--without",
            help=N_("Leave a feature out of the model (repeatable), e.g. --without disputed."),
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.model import report

        day = parse_as_of(split) if split else None
        try:
            result = report(state.db_url, day, _kind(kind), tuple(without))
        except ValueError as exc:
            fail_input(str(exc))
        if as_json:
            print_json(result)
            return
        base = result["baseline"]
        summary = Table(title=_("Late-payment model, time split at {split}").format(
            split=result["split"]))  # fmt: skip
        if result["without"]:
            summary.caption = _("Without the feature(s): {features}").format(
                features=", ".join(result["without"]))  # fmt: skip
        summary.add_column(_("measure"))
        summary.add_column(_("model"), justify="right")
        summary.add_column(_("customer average"), justify="right")
        summary.add_row(
            _("invoices (train / test)"),
            f"{result['train_invoices']} / {result['test_invoices']}",
            "",
        )
        summary.add_row("AUC", str(result["auc"]), str(base["auc_customer_late_rate"]))
        summary.add_row("Brier", str(result["brier"]), "")
        summary.add_row(_("MAE days late"), str(result["mae_days_late"]),
                        str(base["mae_customer_avg_days_late"]))  # fmt: skip
        console.print(summary)
        calibration = Table(title=_("Calibration"))
        for col in (_("predicted range"), "n", _("predicted"), _("observed")):
            calibration.add_column(col, justify="right")
        for row in result["calibration"]:
            calibration.add_row(row["range"], str(row["n"]), str(row["predicted"]),
                                str(row["observed"]))  # fmt: skip
        console.print(calibration)
        drivers = Table(title=_("Main drivers"))
        drivers.add_column(_("feature"))
        drivers.add_column(_("weight"), justify="right")
        for row in result["drivers"]:
            drivers.add_row(row["feature"], str(row["weight"]))
        console.print(drivers)

    app.add_typer(model_app, name="model")

    forecast_app = typer.Typer(help=N_("Cash-in forecast per week from predicted payment dates."))

    @forecast_app.callback(
        invoke_without_command=True,
        help=N_("Expected collections per week for the next weeks (default 13)."),
    )
    def forecast_cmd(
        ctx: typer.Context,
        as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
        weeks: int = typer.Option(13, "--weeks", min=1, max=104),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        from encours.risk.forecast import cash_forecast

        day = parse_as_of(as_of)
        try:
            result = cash_forecast(state.db_url, day, weeks)
        except ValueError as exc:
            fail_input(str(exc))
        if as_json:
            print_json(result)
            return
        for currency, part in result["currencies"].items():
            table = Table(title=_("Expected collections as of {as_of} ({currency})").format(
                as_of=result["as_of"], currency=currency))  # fmt: skip
            table.add_column(_("week"), justify="right")
            table.add_column(_("from"))
            table.add_column(_("to"))
            table.add_column(_("expected"), justify="right")
            for row in part["weeks"]:
                table.add_row(str(row["week"]), row["start"], row["end"], row["expected"])
            table.add_row("", "", _("total"), part["within_horizon"])
            table.add_row("", "", _("later"), part["later"])
            console.print(table)
        if not result["currencies"]:
            console.print(_("No open invoice as of {as_of}.").format(as_of=result["as_of"]))

    @forecast_app.command(
        "backtest",
        help=N_("Forecast vs actual collections week by week on past days: MAE, MAPE, WAPE."),
    )
    def backtest_cmd(
        start: str = typer.Option(..., "--start", help=N_("First forecast day (YYYY-MM-DD).")),
        end: str = typer.Option(..., "--end", help=N_("Last forecast day (YYYY-MM-DD).")),
        weeks: int = typer.Option(13, "--weeks", min=1, max=104),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        from encours.risk.forecast import run_backtest

        first, last = parse_as_of(start), parse_as_of(end)
        if last < first:
            fail_usage(_("--end is before --start"))
        try:
            result = run_backtest(state.db_url, first, last, weeks)
        except ValueError as exc:
            fail_input(str(exc))
        if as_json:
            print_json(result)
            return
        table = Table(title=_("Cash-in forecast backtest {start} .. {end} ({n} forecasts)").format(
            start=result["start"], end=result["end"], n=result["origins"]))  # fmt: skip
        for col in (_("currency"), _("weeks compared"), "MAE", "MAPE", "WAPE",
                    _("due-date MAE"), _("due-date WAPE")):  # fmt: skip
            table.add_column(col, justify="right")
        for currency, part in result["currencies"].items():
            naive = part["due_date_baseline"]
            table.add_row(currency, str(part["points"]), part["mae"], str(part["mape"]),
                          str(part["wape"]), naive["mae"], str(naive["wape"]))  # fmt: skip
        console.print(table)

    app.add_typer(forecast_app, name="forecast")
