"""Cash-in forecast: expected collections per week from the predicted payment dates.

Week k (1-based) of a forecast as of D covers the days D + 7(k-1) + 1 .. D + 7k. The
expected collection of an open invoice is its open amount on D, placed in the week of its
predicted payment date (`encours.risk.model.score_open_invoices`); invoices predicted
after the horizon are totalled as `later`. Only the invoices open on D are forecast
(invoices issued later, unapplied cash and credit notes are not).

Backtest: for each origin D from `start` to `end` every `step` days, a model is trained
as of D (only what was known on D), the forecast of the invoices open on D is compared,
week by week, with what was actually allocated to those invoices during that week.
Weeks ending after the ledger's last known day are left out. Errors per currency:
MAE (mean absolute error per week), MAPE (mean of |error| / actual over weeks with
collections) and WAPE (sum of |errors| / sum of actuals), with the same errors for the
naive due-date forecast (each invoice paid on its due date, overdue ones next week).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import polars as pl

from encours.money import from_minor
from encours.risk.features import Ledger
from encours.risk.model import (
    FittedModel,
    model_for,
    read_ledger,
    score_open_invoices,
    train,
)

HORIZON_WEEKS = 13


def _week(as_of: dt.date, day: pl.Expr) -> pl.Expr:
    """Week number (1-based) of `day` after `as_of`; days on or before as_of count in week 1."""
    days = (day - pl.lit(as_of)).dt.total_days().clip(lower_bound=1)
    return ((days - 1) // 7 + 1).cast(pl.Int64)


def weekly_expected(
    scored: pl.DataFrame, as_of: dt.date, weeks: int, date_column: str = "predicted_payment_date"
) -> pl.DataFrame:
    """currency, week (1..weeks, every week present), start, end, expected_minor, and one
    row per currency with week = weeks + 1 ("later": beyond the horizon)."""
    currencies = scored["currency"].unique().sort().to_list()
    grid = pl.DataFrame({"currency": currencies}).join(
        pl.DataFrame({"week": list(range(1, weeks + 2))}, schema={"week": pl.Int64}),
        how="cross",
    )
    sums = (
        scored.with_columns(week=_week(as_of, pl.col(date_column)).clip(upper_bound=weeks + 1))
        .group_by("currency", "week")
        .agg(expected_minor=pl.col("open_minor").sum())
    )
    return (
        grid.join(sums, on=["currency", "week"], how="left")
        .with_columns(
            pl.col("expected_minor").fill_null(0),
            start=pl.lit(as_of) + pl.duration(days=(pl.col("week") - 1) * 7 + 1),
            end=pl.lit(as_of) + pl.duration(days=pl.col("week") * 7),
        )
        .sort("currency", "week")
    )


def forecast_frame(
    ledger: Ledger, model: FittedModel, as_of: dt.date, weeks: int = HORIZON_WEEKS
) -> pl.DataFrame:
    scored = score_open_invoices(ledger, model, as_of)
    return weekly_expected(scored, as_of, weeks)


def _money(minor: int, currency: str) -> str:
    return str(from_minor(int(minor), currency))


def cash_forecast(db_url: str | None, as_of: dt.date, weeks: int = HORIZON_WEEKS) -> dict:
    """Expected collections per week for the next `weeks` weeks (use case of the CLI)."""
    ledger = read_ledger(db_url)
    model = model_for(db_url, ledger, as_of)
    frame = forecast_frame(ledger, model, as_of, weeks)
    by_currency: dict[str, dict] = {}
    for row in frame.iter_rows(named=True):
        cur = by_currency.setdefault(
            row["currency"], {"weeks": [], "within_horizon": Decimal(0), "later": Decimal(0)}
        )
        amount = from_minor(int(row["expected_minor"]), row["currency"])
        if row["week"] > weeks:
            cur["later"] = amount
            continue
        cur["within_horizon"] += amount
        cur["weeks"].append(
            {"week": row["week"], "start": row["start"].isoformat(),
             "end": row["end"].isoformat(), "expected": str(amount)}
        )  # fmt: skip
    for cur in by_currency.values():
        cur["within_horizon"] = str(cur["within_horizon"])
        cur["later"] = str(cur["later"])
    return {
        "as_of": as_of.isoformat(),
        "weeks": weeks,
        "model_as_of": model.as_of.isoformat(),
        "currencies": by_currency,
    }


def actual_collections(ledger: Ledger, as_of: dt.date, weeks: int) -> pl.DataFrame:
    """currency, week, actual_minor: what was allocated in each week after `as_of` to the
    invoices open on `as_of`."""
    open_ids = ledger.invoices.filter(
        (pl.col("issue_date") <= as_of)
        & (pl.col("settled_date").is_null() | (pl.col("settled_date") > as_of))
    ).select(pl.col("document_id").alias("invoice_id"), "currency")
    end = as_of + dt.timedelta(days=7 * weeks)
    return (
        ledger.allocations.filter((pl.col("date") > as_of) & (pl.col("date") <= end))
        .join(open_ids, on="invoice_id")
        .with_columns(week=_week(as_of, pl.col("date")))
        .group_by("currency", "week")
        .agg(actual_minor=pl.col("amount_minor").sum())
    )


def _errors(frame: pl.DataFrame, column: str) -> dict:
    err = (frame[column] - frame["actual_minor"]).abs().to_numpy().astype(np.float64)
    actual = frame["actual_minor"].to_numpy().astype(np.float64)
    positive = actual > 0
    return {
        "mae": float(err.mean()),
        "mape": float((err[positive] / actual[positive]).mean()) if positive.any() else None,
        "wape": float(err.sum() / actual.sum()) if actual.sum() > 0 else None,
    }


def backtest(
    ledger: Ledger,
    start: dt.date,
    end: dt.date,
    weeks: int = HORIZON_WEEKS,
    step_days: int = 7,
    kind: str = "lightgbm",
) -> dict:
    """Forecast vs actual collections, week by week, for origins start..end every step."""
    if end < start:
        raise ValueError("end is before start")
    last_day = ledger.last_day
    if last_day is None:
        raise ValueError("the ledger is empty")
    frames = []
    origin = start
    while origin <= end:  # a handful of origins: one model each, trained as of the origin
        model = train(ledger, origin, kind)
        scored = score_open_invoices(ledger, model, origin)
        if not scored.is_empty():
            naive = scored.with_columns(
                naive_date=pl.max_horizontal("due_date", pl.lit(origin + dt.timedelta(days=1)))
            )
            expected = weekly_expected(scored, origin, weeks).filter(pl.col("week") <= weeks)
            due = weekly_expected(naive, origin, weeks, "naive_date").select(
                "currency", "week", naive_minor="expected_minor"
            )
            frames.append(
                expected.join(due, on=["currency", "week"])
                .join(actual_collections(ledger, origin, weeks), on=["currency", "week"],
                      how="left")
                .with_columns(pl.col("actual_minor").fill_null(0), origin=pl.lit(origin))
                .filter(pl.col("end") <= last_day)
            )  # fmt: skip
        origin += dt.timedelta(days=step_days)
    if not frames:
        raise ValueError("no open invoice at any origin of the backtest")
    weekly = pl.concat(frames)
    if weekly.is_empty():
        raise ValueError("no complete week of actual collections after the origins")
    result: dict = {"start": start.isoformat(), "end": end.isoformat(), "weeks": weeks,
                    "origins": weekly["origin"].n_unique(), "currencies": {}}  # fmt: skip
    for (currency,), part in weekly.group_by("currency", maintain_order=True):
        model_err = _errors(part, "expected_minor")
        naive_err = _errors(part, "naive_minor")
        result["currencies"][currency] = {
            "points": part.height,
            "actual_total": _money(int(part["actual_minor"].sum()), str(currency)),
            "forecast_total": _money(int(part["expected_minor"].sum()), str(currency)),
            "mae": _money(round(model_err["mae"]), str(currency)),
            "mape": None if model_err["mape"] is None else round(model_err["mape"], 4),
            "wape": None if model_err["wape"] is None else round(model_err["wape"], 4),
            "due_date_baseline": {
                "mae": _money(round(naive_err["mae"]), str(currency)),
                "mape": None if naive_err["mape"] is None else round(naive_err["mape"], 4),
                "wape": None if naive_err["wape"] is None else round(naive_err["wape"], 4),
            },
            "by_week": [
                {
                    "origin": r["origin"].isoformat(),
                    "week": r["week"],
                    "forecast": _money(r["expected_minor"], str(currency)),
                    "actual": _money(r["actual_minor"], str(currency)),
                }
                for r in part.sort("origin", "week").iter_rows(named=True)
            ],  # fmt: skip
        }
    return result


def run_backtest(
    db_url: str | None, start: dt.date, end: dt.date, weeks: int = HORIZON_WEEKS
) -> dict:
    return backtest(read_ledger(db_url), start, end, weeks)
