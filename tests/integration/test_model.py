"""The late-payment model on the IBM sample: time split, stored model, predictions."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encours.cli.app import app
from encours.risk.model import evaluate, read_ledger
from encours.services.imports import import_file
from encours.store.db import unit_of_work
from encours.store.positions import open_invoices

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "examples" / "mappings" / "ibm-ar.toml"
SPLIT = dt.date(2013, 3, 1)


@pytest.fixture
def ibm_db(db_url: str, ibm_sample: Path) -> str:
    report = import_file(ibm_sample, "invoices", db_url=db_url, mapping_path=MAPPING)
    assert report.inserted == 1930
    return db_url


def test_time_split_beats_the_customer_average(ibm_db: str) -> None:
    result = evaluate(read_ledger(ibm_db), SPLIT, "lightgbm")
    base = result["baseline"]
    assert result["train_invoices"] + result["test_invoices"] == 1930
    assert result["auc"] > base["auc_customer_late_rate"]
    assert result["auc"] > base["auc_static_customer_avg"]
    assert result["mae_days_late"] < base["mae_customer_avg_days_late"]
    assert result["mae_days_late"] < base["mae_static_customer_avg"]
    assert 0 < result["brier"] < 0.25
    assert sum(row["n"] for row in result["calibration"]) == result["test_invoices"]
    assert result["drivers"] and result["drivers"][0]["weight"] > 0


def test_predict_reads_the_stored_model(ibm_db: str, tmp_path: Path) -> None:
    runner = CliRunner()
    as_of = "2013-04-15"
    trained = runner.invoke(app, ["--db", ibm_db, "model", "train", "--as-of", as_of, "--json"])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "predictions.csv"
    missing = runner.invoke(
        app, ["--db", ibm_db, "model", "predict", "--as-of", "2013-01-01", "--out", str(out)]
    )
    assert missing.exit_code == 1  # no model trained as of that day: nothing from the future

    result = runner.invoke(
        app, ["--db", ibm_db, "model", "predict", "--as-of", as_of, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == [
        "invoice_number", "customer_id", "p_late", "predicted_days_late",
        "predicted_payment_date",
    ]  # fmt: skip
    with unit_of_work(ibm_db) as conn:
        expected = open_invoices(conn, dt.date.fromisoformat(as_of))
    assert sorted(r["invoice_number"] for r in rows) == sorted(expected["number"].to_list())
    day = dt.date.fromisoformat(as_of)
    due = dict(zip(expected["number"], expected["due_date"], strict=True))
    for r in rows:
        p = float(r["p_late"])
        paid = dt.date.fromisoformat(r["predicted_payment_date"])
        assert 0 <= p <= 1 and paid > day
        assert int(r["predicted_days_late"]) == max((paid - due[r["invoice_number"]]).days, 0)
        if due[r["invoice_number"]] < day:  # still open after its due date: late for sure
            assert p == 1.0

    explained = runner.invoke(
        app, ["--db", ibm_db, "model", "predict", "--as-of", as_of, "--out", str(out),
              "--reasons"],
    )  # fmt: skip
    assert explained.exit_code == 0, explained.output
    with out.open(encoding="utf-8") as fh:
        reasons = [r["top_reasons"] for r in csv.DictReader(fh)]
    assert any("(+" in r and "History: " in r for r in reasons)  # sentences, not name=value


def test_report_command(ibm_db: str) -> None:
    result = CliRunner().invoke(
        app, ["--db", ibm_db, "model", "report", "--split", "2013-03-01", "--kind", "logistic"]
    )
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output and "Brier" in result.output
    bad = CliRunner().invoke(app, ["--db", ibm_db, "model", "report", "--kind", "forest"])
    assert bad.exit_code == 2
