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


def test_fec_keeps_the_master_data_of_known_customers(db_url: str, tmp_path: Path) -> None:
    """A FEC names the auxiliary accounts; it never erases what a customers file gave."""
    from sqlalchemy import select

    from encours.store.db import unit_of_work
    from encours.store.schema import Customer

    path = FEC_DIR / "clean.txt"
    import_file(path, "fec", db_url=db_url)
    with unit_of_work(db_url) as conn:
        code, name = conn.execute(select(Customer.code, Customer.name).limit(1)).one()
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "customer_id,name,siren,city,payment_terms,credit_limit\n"
        f"{code},{name},732829320,Lyon,45 days end of month,50000\n",
        encoding="utf-8",
    )
    assert import_file(customers, "customers", db_url=db_url).updated == 1
    again = import_file(path, "fec", db_url=db_url)
    assert again.details["customers"]["updated"] == 0
    with unit_of_work(db_url) as conn:
        row = conn.execute(select(Customer.__table__).where(Customer.code == code)).one()
    assert (row.siren, row.city, row.payment_terms, row.credit_limit_minor) == (
        "732829320",
        "Lyon",
        "45 days end of month",
        5_000_000,
    )
