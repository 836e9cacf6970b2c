"""Cash-in forecast from predicted payment dates, and its backtest."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from encours.cli.app import app
from encours.money import from_minor
from encours.risk.forecast import backtest, forecast_frame
from encours.risk.model import read_ledger, score_open_invoices, train
from encours.services.imports import import_file

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "examples" / "mappings" / "ibm-ar.toml"
AS_OF = dt.date(2013, 3, 1)


@pytest.fixture
def ibm_db(db_url: str, ibm_sample: Path) -> str:
    import_file(ibm_sample, "invoices", db_url=db_url, mapping_path=MAPPING)
    return db_url


def test_weekly_sums_are_the_open_invoices_expected_in_the_horizon(ibm_db: str) -> None:
    ledger = read_ledger(ibm_db)
    model = train(ledger, AS_OF)
    scored = score_open_invoices(ledger, model, AS_OF)
    weeks = 6
    frame = forecast_frame(ledger, model, AS_OF, weeks)
    horizon_end = AS_OF + dt.timedelta(days=7 * weeks)
    within = scored.filter(pl.col("predicted_payment_date") <= horizon_end)["open_minor"].sum()
    in_weeks = frame.filter(pl.col("week") <= weeks)
    assert in_weeks.height == weeks
    assert in_weeks["expected_minor"].sum() == within
    assert frame["expected_minor"].sum() == scored["open_minor"].sum()  # + later
    # Each week holds exactly the invoices predicted in it.
    week3 = in_weeks.filter(pl.col("week") == 3).row(0, named=True)
    assert week3["start"] == AS_OF + dt.timedelta(days=15)
    assert (
        week3["expected_minor"]
        == scored.filter(pl.col("predicted_payment_date").is_between(week3["start"], week3["end"]))[
            "open_minor"
        ].sum()
    )


def test_forecast_command_json(ibm_db: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["--db", ibm_db, "forecast", "--as-of", AS_OF.isoformat(), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    usd = payload["currencies"]["USD"]
    assert len(usd["weeks"]) == 13
    total = sum((Decimal(w["expected"]) for w in usd["weeks"]), Decimal(0))
    assert total == Decimal(usd["within_horizon"])
    ledger = read_ledger(ibm_db)
    open_on_day = ledger.invoices.filter(
        (pl.col("issue_date") <= AS_OF)
        & (pl.col("settled_date").is_null() | (pl.col("settled_date") > AS_OF))
    )["amount_minor"].sum()
    assert total + Decimal(usd["later"]) == from_minor(open_on_day, "USD")


def test_backtest_returns_finite_errors(ibm_db: str) -> None:
    result = backtest(read_ledger(ibm_db), dt.date(2013, 1, 7), dt.date(2013, 2, 4),
                      weeks=8, step_days=14)  # fmt: skip
    usd = result["currencies"]["USD"]
    assert result["origins"] == 3 and usd["points"] > 0
    for value in (usd["mae"], usd["mape"], usd["wape"]):
        assert math.isfinite(float(value))
    assert Decimal(usd["actual_total"]) > 0
    cli = CliRunner().invoke(
        app, ["--db", ibm_db, "forecast", "backtest", "--start", "2013-02-04",
              "--end", "2013-02-04", "--weeks", "4", "--json"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert math.isfinite(json.loads(cli.output)["currencies"]["USD"]["wape"])
