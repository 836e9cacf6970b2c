"""Risk-class prior and dated disputes in the model features: point in time (nothing dated
after the prediction day changes them), and computed as documented (brute force)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_features_leakage import START, random_ledger, rewrite_future, rows_known_on

from encours.risk.features import (
    ASSESSMENT_SCHEMA,
    DISPUTE_SCHEMA,
    MIN_SEGMENT_HISTORY,
    Ledger,
    compute_features,
    with_targets,
)

CLASSES = ["A", "B", "C", "D", "E"]


def with_assessments_and_disputes(ledger: Ledger, seed: int) -> Ledger:
    rng = np.random.default_rng(seed)
    customers = ledger.customers["customer_id"].to_list()
    rows = [
        (cid, START + dt.timedelta(days=int(d)), str(rng.choice(CLASSES)))
        for cid in customers
        for d in sorted(set(rng.integers(-30, 365, 4).tolist()))
    ]
    assessments = pl.DataFrame(rows, schema=ASSESSMENT_SCHEMA, orient="row")
    inv = ledger.invoices.sample(40, seed=seed)
    disputes = pl.DataFrame(
        {
            "document_id": inv["document_id"],
            "opened_on": [i + dt.timedelta(days=int(x)) for i, x in
                          zip(inv["issue_date"], rng.integers(0, 60, inv.height), strict=True)],
            "resolved_on": [None if rng.random() < 0.5 else i + dt.timedelta(days=int(x))
                            for i, x in zip(inv["issue_date"], rng.integers(61, 120, inv.height),
                                            strict=True)],
        },
        schema=DISPUTE_SCHEMA,
    )  # fmt: skip
    return dataclasses.replace(ledger, assessments=assessments, disputes=disputes)


def rewrite_future_too(ledger: Ledger, day: dt.date, seed: int) -> Ledger:
    """rewrite_future, plus: assessments dated on or after the day get other classes and new
    ones are added; disputes opened after the day move, resolutions after it move."""
    rng = np.random.default_rng(seed)
    future = rewrite_future(ledger, day, seed)
    assert ledger.assessments is not None and ledger.disputes is not None
    a = ledger.assessments
    n = a.height
    a = a.with_columns(
        risk_class=pl.when(pl.col("as_of") >= day)
        .then(pl.Series(rng.choice(CLASSES, n).tolist()))
        .otherwise(pl.col("risk_class"))
    )
    added = pl.DataFrame([(cid, day, "E") for cid in a["customer_id"].unique().to_list()]
                         + [(99, day + dt.timedelta(days=3), "A")],
                         schema=ASSESSMENT_SCHEMA, orient="row")  # fmt: skip
    d = ledger.disputes
    later = pl.lit(day) + pl.duration(days=pl.Series(rng.integers(1, 50, d.height)))
    d = d.with_columns(
        opened_on=pl.when(pl.col("opened_on") > day).then(later).otherwise(pl.col("opened_on")),
        resolved_on=pl.when(pl.col("resolved_on") > day).then(later + pl.duration(days=1))
        .otherwise(pl.col("resolved_on")),
    )  # fmt: skip
    # a dispute opened in encours after the day on invoices known before it: encours sets
    # their current flag too; the dated record says it was not disputed yet on the day
    known = ledger.invoices.filter(
        (pl.col("issue_date") < day)
        & ~pl.col("disputed")
        & ~pl.col("document_id").is_in(d["document_id"].implode())
    )["document_id"].head(5)
    opened = pl.DataFrame(
        {
            "document_id": known,
            "opened_on": [day + dt.timedelta(days=1)] * known.len(),
            "resolved_on": [None] * known.len(),
        },
        schema=DISPUTE_SCHEMA,
    )
    invoices = future.invoices.with_columns(
        disputed=pl.col("disputed") | pl.col("document_id").is_in(known.implode())
    )
    return dataclasses.replace(future, invoices=invoices, assessments=pl.concat([a, added]),
                               disputes=pl.concat([d, opened]))  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_class_prior_and_disputes_are_point_in_time(seed: int) -> None:
    ledger = with_assessments_and_disputes(random_ledger(seed), seed)
    day = START + dt.timedelta(days=int(np.random.default_rng(seed).integers(120, 330)))
    rows = rows_known_on(ledger, day)
    before = compute_features(ledger, rows).sort("document_id", "cutoff")
    after = compute_features(rewrite_future_too(ledger, day, seed + 7), rows).sort(
        "document_id", "cutoff"
    )
    assert_frame_equal(before, after)
    # not vacuous: the class prior is used
    assert before["class_prior_late_rate"].drop_nulls().len() > 0
    assert (before["prior_source"] == "class").any()


def brute_force_class_prior(ledger: Ledger, customer_id: int, cutoff: dt.date) -> float | None:
    a = ledger.assessments
    assert a is not None

    def class_before(cid: int, day: dt.date) -> str | None:
        known = a.filter((pl.col("customer_id") == cid) & (pl.col("as_of") < day)).sort("as_of")
        return None if known.is_empty() else known["risk_class"][-1]

    own = class_before(customer_id, cutoff)
    if own is None:
        return None
    settled = with_targets(ledger.invoices).filter(pl.col("settled_date") < cutoff)
    late = [r["late"] for r in settled.iter_rows(named=True)
            if class_before(r["customer_id"], r["settled_date"]) == own]  # fmt: skip
    if len(late) < MIN_SEGMENT_HISTORY:
        return None
    return sum(late) / len(late)


def test_class_prior_is_the_late_rate_of_the_class() -> None:
    ledger = with_assessments_and_disputes(random_ledger(11, invoices=900), 11)
    rows = ledger.invoices.filter(pl.col("issue_date") > START + dt.timedelta(days=250)).head(25)
    feats = compute_features(ledger, rows.select("document_id", cutoff="issue_date"))
    checked = 0
    for row in feats.join(rows.select("document_id", "customer_id"), on="document_id").iter_rows(
        named=True
    ):
        expected = brute_force_class_prior(ledger, row["customer_id"], row["cutoff"])
        got = row["class_prior_late_rate"]
        if expected is None:
            assert got is None or math.isnan(got)
        else:
            checked += 1
            assert got == pytest.approx(expected)
            assert row["prior_source"] == "class"
            assert row["prior_late_rate"] == pytest.approx(expected)
    assert checked > 5


def test_new_customer_without_class_keeps_the_segment_prior() -> None:
    ledger = with_assessments_and_disputes(random_ledger(5), 5)
    no_class = dataclasses.replace(ledger, assessments=None)
    feats = compute_features(no_class, ledger.invoices.select("document_id", cutoff="issue_date"))
    assert feats["class_prior_late_rate"].is_null().all()
    assert set(feats["prior_source"].unique().to_list()) <= {"segment", "portfolio", "none"}


def test_dated_dispute_counts_from_its_opening_day_until_resolved() -> None:
    ledger = random_ledger(8)
    inv = ledger.invoices.with_columns(disputed=pl.col("document_id") == 2)  # flag only on 2
    opened, resolved = START + dt.timedelta(days=100), START + dt.timedelta(days=130)
    disputes = pl.DataFrame([(1, opened, resolved)], schema=DISPUTE_SCHEMA, orient="row")
    ledger = dataclasses.replace(ledger, invoices=inv, disputes=disputes)
    days = [opened - dt.timedelta(days=1), opened, resolved - dt.timedelta(days=1), resolved]
    rows = pl.DataFrame({"document_id": [1] * 4 + [2] * 4, "cutoff": days * 2})
    feats = compute_features(ledger, rows).sort("document_id", "cutoff")
    assert feats["disputed"].to_list() == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]
