"""The IBM accounts-receivable sample imports as it is with the shipped mapping."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from encours.services.imports import import_file
from encours.services.reports import status

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "examples" / "mappings" / "ibm-ar.toml"


def mdy(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%m/%d/%Y").date()


def test_ibm_outstanding_replays_settlements(db_url: str, ibm_sample: Path) -> None:
    report = import_file(ibm_sample, "invoices", db_url=db_url, mapping_path=MAPPING)
    assert report.inserted == 1930 and report.rejected == 0

    with ibm_sample.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for day in (dt.date(2013, 3, 31), dt.date(2012, 6, 30), dt.date(2013, 6, 30)):
        expected = sum(
            (Decimal(r["InvoiceAmount"]) for r in rows
             if mdy(r["InvoiceDate"]) <= day and mdy(r["SettledDate"]) > day),
            Decimal(0),
        )  # fmt: skip
        got = status(day, db_url)
        assert Decimal(got["outstanding"]) == expected, day
        assert got["invoices"] == sum(1 for r in rows if mdy(r["InvoiceDate"]) <= day)

    again = import_file(ibm_sample, "invoices", db_url=db_url, mapping_path=MAPPING)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1930)
