"""The monitor derives the customers' positions from the open invoices it reads anyway:
the same figures as `analytics.portfolio.customer_positions` (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from encours.analytics.portfolio import customer_positions
from encours.generate import generate_portfolio
from encours.risk.monitor import positions_from_open_invoices
from encours.services.imports import import_file
from encours.store import positions
from encours.store.db import unit_of_work

COLUMNS = ["customer_id", "currency", "open_invoices", "invoices_open_minor",
           "unapplied_cash_minor", "unapplied_credit_minor", "balance_minor", "exposure_minor",
           "customer_currency", "credit_limit_minor"]  # fmt: skip


def test_positions_from_open_invoices_equal_customer_positions(db_url: str, tmp_path: Path) -> None:
    end = dt.date(2024, 6, 30)
    generate_portfolio(tmp_path, customers=80, invoices=2000, seed=3, end=end)
    for kind in ("customers", "invoices", "payments"):
        import_file(tmp_path / f"{kind}.csv", kind, db_url=db_url)
    with unit_of_work(db_url) as conn:
        for day in (end, end - dt.timedelta(days=30), end - dt.timedelta(days=200)):
            expected = customer_positions(conn, day).select(COLUMNS).sort(COLUMNS[:2])
            got = positions_from_open_invoices(conn, day, positions.open_invoices(conn, day))
            got = got.select(COLUMNS).sort(COLUMNS[:2])
            assert expected.height > 10
            assert (expected["exposure_minor"] > 0).any()
            assert_frame_equal(got, expected, check_dtypes=False)
            assert got.filter(pl.col("exposure_minor") < 0).is_empty()


def test_dso_rule_gives_the_same_alerts_from_the_ledger(db_url: str, tmp_path: Path) -> None:
    """With a trained model the run reads the whole ledger anyway and the DSO rule takes its
    sales from it instead of a query of its own: the same alerts."""
    from encours.risk.model import train_model
    from encours.risk.monitor import Thresholds, _Context, rule_dso_worsened

    end = dt.date(2024, 6, 30)
    generate_portfolio(tmp_path, customers=80, invoices=2500, seed=5, end=end)
    for kind in ("customers", "invoices", "payments"):
        import_file(tmp_path / f"{kind}.csv", kind, db_url=db_url)
    train_model(db_url, end, kind="logistic")
    thresholds = Thresholds().with_overrides(dso_increase_days="1", large_invoice_amount="1")
    with unit_of_work(db_url) as conn:
        alone = _Context(conn, end, thresholds, end, kinds=("dso_worsened",))
        shared = _Context(conn, end, thresholds, end, kinds=("dso_worsened", "predicted_late"))
        assert not alone.ledger_is_read() and shared.ledger_is_read()
        expected = rule_dso_worsened(alone).sort("key")
        got = rule_dso_worsened(shared).sort("key")
        assert "ledger" in shared._cache and "ledger" not in alone._cache  # noqa: SLF001
    assert expected.height > 3
    assert_frame_equal(got, expected)
