"""The monitor scores a few invoices only: their features (and scores) must be the very
ones computed when the whole ledger is scored (per-customer sums restricted to the
customers of the rows; the priors still read every customer)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_features_leakage import START, random_ledger

from encours.risk.features import compute_features
from encours.risk.model import score_open_invoices, train


@pytest.mark.parametrize("seed", range(4))
def test_features_of_a_subset_equal_those_of_the_whole(seed: int) -> None:
    ledger = random_ledger(seed, invoices=600, customers=12)
    day = START + dt.timedelta(days=250)
    everyone = ledger.invoices.select("document_id", cutoff=pl.lit(day))
    full = compute_features(ledger, everyone)
    # two customers of twelve: the restricted path (fewer than half the customers)
    picked = ledger.invoices.filter(pl.col("customer_id").is_in([2, 5]))
    rows = picked.select("document_id", cutoff=pl.lit(day))
    subset = compute_features(ledger, rows)
    assert subset.height == rows.height > 0
    expected = full.filter(pl.col("document_id").is_in(picked["document_id"].implode()))
    assert_frame_equal(subset, expected)
    # training rows (each its own cutoff), restricted too
    own = picked.select("document_id", cutoff="issue_date")
    all_own = compute_features(ledger, ledger.invoices.select("document_id", cutoff="issue_date"))
    assert_frame_equal(
        compute_features(ledger, own),
        all_own.filter(pl.col("document_id").is_in(picked["document_id"].implode())),
    )


def test_scoring_some_open_invoices_gives_their_scores_of_the_full_scoring() -> None:
    ledger = random_ledger(11, invoices=800, customers=10)
    day = START + dt.timedelta(days=300)
    model = train(ledger, day, "lightgbm")
    full = score_open_invoices(ledger, model, day, reasons=True)
    assert full.height > 10
    ids = full["document_id"].head(7)
    some = score_open_invoices(ledger, model, day, reasons=True, document_ids=ids)
    assert_frame_equal(some, full.filter(pl.col("document_id").is_in(ids.implode())))
    none = score_open_invoices(ledger, model, day, document_ids=[])
    assert none.is_empty()
