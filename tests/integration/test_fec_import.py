"""A FEC file written to the standard imports into the ledger, idempotently."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from encours.imports.load import ImportRejected
from encours.services.imports import import_file
from encours.services.reports import status

FEC_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fec"


def balance_411(path: Path) -> Decimal:
    """Sum of debits minus credits on the customer accounts, straight from the file."""
    total = Decimal(0)
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        fields = line.split("|")
        if fields[4].startswith("411"):
            debit = Decimal(fields[11].replace(",", ".") or "0")
            credit = Decimal(fields[12].replace(",", ".") or "0")
            total += debit - credit
    return total


def test_fec_import_matches_the_customer_accounts(db_url: str) -> None:
    path = FEC_DIR / "clean.txt"
    report = import_file(path, "fec", db_url=db_url)
    assert report.errors == []
    assert report.details["documents"]["inserted"] > 0
    assert report.details["payments"]["inserted"] > 0
    got = status(dt.date(2030, 1, 1), db_url)
    assert Decimal(got["outstanding"]) == balance_411(path)

    again = import_file(path, "fec", db_url=db_url)
    assert all(c["inserted"] == 0 and c["updated"] == 0 for c in again.details.values())
    assert status(dt.date(2030, 1, 1), db_url) == got


def test_tab_cp1252_variant_gives_the_same_ledger(db_url: str) -> None:
    import_file(FEC_DIR / "clean_tab_cp1252.txt", "fec", db_url=db_url)
    got = status(dt.date(2030, 1, 1), db_url)
    assert Decimal(got["outstanding"]) == balance_411(FEC_DIR / "clean.txt")


def test_bad_fec_is_rejected_whole(db_url: str) -> None:
    with pytest.raises(ImportRejected) as exc:
        import_file(FEC_DIR / "bad_lines.txt", "fec", db_url=db_url)
    assert len(exc.value.errors) >= 5
    assert all(e.line >= 1 and e.column for e in exc.value.errors)
    assert status(dt.date(2030, 1, 1), db_url)["invoices"] == 0
