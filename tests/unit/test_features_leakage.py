"""Point-in-time features: nothing dated on or after the prediction day changes them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from encours.risk.features import FEATURES, Ledger, compute_features, settlement_dates

START = dt.date(2024, 1, 1)


def random_ledger(seed: int, invoices: int = 300, customers: int = 8) -> Ledger:
    rng = np.random.default_rng(seed)
    issue = [START + dt.timedelta(days=int(d)) for d in np.sort(rng.integers(0, 365, invoices))]
    terms = rng.choice([30, 45, 60], invoices)
    delay = rng.integers(-25, 60, invoices)
    due = [i + dt.timedelta(days=int(t)) for i, t in zip(issue, terms, strict=True)]
    settled = [
        None if rng.random() < 0.1 else max(i, d + dt.timedelta(days=int(x)))
        for i, d, x in zip(issue, due, delay, strict=True)
    ]
    inv = pl.DataFrame(
        {
            "document_id": list(range(1, invoices + 1)),
            "number": [f"F{i:05d}" for i in range(1, invoices + 1)],
            "customer_id": rng.integers(1, customers + 1, invoices).tolist(),
            "currency": ["EUR"] * invoices,
            "issue_date": issue,
            "due_date": due,
            "amount_minor": rng.integers(10_000, 900_000, invoices).tolist(),
            "disputed": (rng.random(invoices) < 0.1).tolist(),
            "channel": rng.choice(["paper", "electronic"], invoices).tolist(),
            "settled_date": settled,
        },
        schema_overrides={"settled_date": pl.Date},
    )
    cust = pl.DataFrame(
        {
            "customer_id": list(range(1, customers + 1)),
            "code": [f"C{i}" for i in range(1, customers + 1)],
            "segment": rng.choice(["a", "b"], customers).tolist(),
            "paperless_date": [START + dt.timedelta(days=int(d)) for d in
                               rng.integers(-100, 400, customers)],
        }
    )  # fmt: skip
    alloc = inv.filter(pl.col("settled_date").is_not_null()).select(
        invoice_id="document_id", date="settled_date", amount_minor="amount_minor"
    )
    return Ledger(inv, cust, alloc)


def rewrite_future(ledger: Ledger, day: dt.date, seed: int) -> Ledger:
    """The same past, another future: every settlement on or after `day` moved (or left
    open), invoices issued after `day` changed, a new customer and invoices after it,
    paperless dates after it moved."""
    rng = np.random.default_rng(seed)
    inv = ledger.invoices
    n = inv.height
    shift = pl.Series(rng.integers(0, 90, n)).cast(pl.Int64)
    reopen = pl.Series(rng.random(n) < 0.2)
    future_settle = pl.col("settled_date").is_null() | (pl.col("settled_date") >= day)
    new_settle = (
        pl.when(reopen)
        .then(None)
        .otherwise(pl.max_horizontal(pl.lit(day), pl.col("issue_date")) + pl.duration(days=shift))
    )
    issued_after = pl.col("issue_date") > day
    inv = inv.with_columns(
        settled_date=pl.when(future_settle).then(new_settle).otherwise(pl.col("settled_date")),
        amount_minor=pl.when(issued_after)
        .then(pl.col("amount_minor") * 3 + 7)
        .otherwise(pl.col("amount_minor")),
        due_date=pl.when(issued_after)
        .then(pl.col("due_date") + pl.duration(days=17))
        .otherwise(pl.col("due_date")),
    )
    extra = pl.DataFrame(
        {
            "document_id": [n + 1, n + 2, n + 3],
            "number": ["X1", "X2", "X3"],
            "customer_id": [1, 2, 99],
            "currency": ["EUR"] * 3,
            "issue_date": [day + dt.timedelta(days=1)] * 3,
            "due_date": [day + dt.timedelta(days=31)] * 3,
            "amount_minor": [5, 10_000_000, 70],
            "disputed": [True, False, True],
            "channel": ["paper"] * 3,
            "settled_date": [day + dt.timedelta(days=2), None, day + dt.timedelta(days=400)],
        }
    )
    cust = ledger.customers.with_columns(
        paperless_date=pl.when(pl.col("paperless_date") >= day)
        .then(pl.lit(day) + pl.duration(days=5))
        .otherwise(pl.col("paperless_date"))
    )
    cust = pl.concat(
        [cust, pl.DataFrame({"customer_id": [99], "code": ["NEW"], "segment": ["a"],
                             "paperless_date": [day]})]
    )  # fmt: skip
    return Ledger(pl.concat([inv, extra.cast(inv.schema)]), cust, ledger.allocations)


def rows_known_on(ledger: Ledger, day: dt.date) -> pl.DataFrame:
    """Training rows (cutoff = issue date) issued on or before `day`, and prediction rows
    (cutoff = day) for every invoice issued on or before it."""
    issued = ledger.invoices.filter(pl.col("issue_date") <= day)
    return pl.concat(
        [
            issued.select("document_id", cutoff="issue_date"),
            issued.select("document_id", cutoff=pl.lit(day)),
        ]
    ).unique()


def features(ledger: Ledger, rows: pl.DataFrame) -> pl.DataFrame:
    return compute_features(ledger, rows).sort("document_id", "cutoff")


@pytest.mark.parametrize("seed", range(6))
def test_the_future_does_not_change_features(seed: int) -> None:
    ledger = random_ledger(seed)
    day = START + dt.timedelta(days=int(np.random.default_rng(seed).integers(60, 330)))
    rows = rows_known_on(ledger, day)
    before = features(ledger, rows)
    after = features(rewrite_future(ledger, day, seed + 100), rows)
    assert before.height == rows.height
    assert_frame_equal(before, after)
    # The history really is used: the known customers' rows carry some of it.
    assert before["hist_count"].sum() > 0 and before["open_count"].sum() > 0


def test_own_settlement_does_not_change_training_features() -> None:
    ledger = random_ledger(42)
    rows = ledger.invoices.select("document_id", cutoff="issue_date")
    before = features(ledger, rows)
    for moved in (None, 0, 1, 200):
        inv = ledger.invoices.with_columns(
            settled_date=pl.when(pl.col("document_id") == 150)
            .then(None if moved is None else pl.col("issue_date") + pl.duration(days=moved))
            .otherwise(pl.col("settled_date"))
        )
        after = features(Ledger(inv, ledger.customers, ledger.allocations), rows)
        assert_frame_equal(
            before.filter(pl.col("document_id") == 150), after.filter(pl.col("document_id") == 150)
        )


def test_the_past_does_change_features() -> None:
    """The counterpart: a settlement moved before the cutoff shows in the features."""
    ledger = random_ledger(3)
    day = START + dt.timedelta(days=300)
    rows = ledger.invoices.filter(pl.col("issue_date") <= day).select(
        "document_id", cutoff=pl.lit(day)
    )
    inv = ledger.invoices.with_columns(
        settled_date=pl.when(pl.col("settled_date") < day - dt.timedelta(days=60))
        .then(pl.col("settled_date") + pl.duration(days=20))
        .otherwise(pl.col("settled_date"))
    )
    before = features(ledger, rows)
    after = features(Ledger(inv, ledger.customers, ledger.allocations), rows)
    assert not before.select(FEATURES).equals(after.select(FEATURES))


def test_new_customer_falls_back_to_prior() -> None:
    ledger = random_ledger(5)
    day = START + dt.timedelta(days=200)
    future = rewrite_future(ledger, day, 1)
    row = future.invoices.filter(pl.col("customer_id") == 99).select(
        "document_id", cutoff="issue_date"
    )
    got = compute_features(future, row).row(0, named=True)
    assert got["has_history"] == 0.0 and got["hist_late_rate"] is None
    assert got["prior_source"] in ("segment", "portfolio")
    assert got["late_rate_shrunk"] == pytest.approx(got["prior_late_rate"])
    assert got["days_late_shrunk"] == pytest.approx(got["prior_days_late"])


def test_settlement_date_is_the_allocation_that_clears_the_invoice() -> None:
    inv = pl.DataFrame({"document_id": [1, 2, 3], "amount_minor": [100, 100, 100]})
    alloc = pl.DataFrame(
        {
            "invoice_id": [1, 1, 1, 2, 3],
            "date": [dt.date(2024, 1, d) for d in (5, 9, 20, 3, 4)],
            "amount_minor": [30, 70, 10, 60, 100],
        }
    )
    got = settlement_dates(inv, alloc).sort("document_id")["settled_date"].to_list()
    assert got == [dt.date(2024, 1, 9), None, dt.date(2024, 1, 4)]
