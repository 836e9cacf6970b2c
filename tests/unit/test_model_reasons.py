"""Prediction reasons in words (translated), and the `--without FEATURE` switch of the
model report."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest
from test_features_leakage import START, random_ledger
from typer.testing import CliRunner

from encours import i18n
from encours.cli.app import app
from encours.risk.features import FEATURES
from encours.risk.model import evaluate, feature_text, fit, model_features, training_frame


@pytest.fixture(autouse=True)
def _english():  # noqa: ANN202
    i18n.set_language("en")
    yield
    i18n.set_language("en")


def test_feature_sentences() -> None:
    assert feature_text("hist_delay", 5.857) == "History: paid 5.9 days late on average"
    assert feature_text("hist_delay", -2.0) == "History: paid 2 days early on average"
    assert feature_text("hist_late_rate", 0.25) == "History: 25 % of the invoices paid late"
    assert feature_text("disputed", 1.0) == "Invoice disputed"
    assert feature_text("disputed", 0.0) == "Invoice not disputed"
    assert feature_text("hist_days_late", math.nan) == "No payment history yet"
    assert feature_text("class_prior_late_rate", math.nan) == "No risk class for the customer"
    assert feature_text("log_amount", math.log(1_234_500 + 1)) == "Invoice amount 12 345"
    assert feature_text("terms_days", 45.0) == "Payment terms of 45 days"
    # every feature has a sentence (no raw name=value left)
    for name in FEATURES:
        assert "=" not in feature_text(name, 1.0), name


def test_sentences_are_translated() -> None:
    i18n.set_language("fr")
    french = feature_text("hist_delay", 5.857)
    assert french != "History: paid 5.9 days late on average" and "5.9" in french


def test_reasons_of_predictions_are_sentences_with_contributions() -> None:
    ledger = random_ledger(4, invoices=400)
    model = fit(training_frame(ledger, START + dt.timedelta(days=300)), "lightgbm",
                START + dt.timedelta(days=300))  # fmt: skip
    frame = training_frame(ledger, START + dt.timedelta(days=300)).head(40)
    reasons = model.reasons(frame)
    assert len(reasons) == 40 and any(reasons)
    part = re.compile(r"^[^=;]+ \(\+\d+\.\d\d\)$")
    for line in filter(None, reasons):
        for item in line.split("; "):
            assert part.match(item), item
            assert not any(item.startswith(f + "=") for f in FEATURES)


def test_model_without_a_feature() -> None:
    assert "disputed" not in model_features(["disputed"])
    assert len(model_features(["disputed", "electronic"])) == len(FEATURES) - 2
    with pytest.raises(ValueError, match="nope"):
        model_features(["nope"])
    ledger = random_ledger(9, invoices=400)
    result = evaluate(ledger, START + dt.timedelta(days=250), without=("disputed",))
    assert result["without"] == ["disputed"]
    assert "disputed" not in {d["feature"] for d in result["drivers"]}
    assert result["auc"] is not None


def test_report_cli_refuses_an_unknown_feature(db_url: str) -> None:
    result = CliRunner().invoke(app, ["--db", db_url, "model", "report", "--without", "nope"])
    assert result.exit_code == 1 and "nope" in result.output
