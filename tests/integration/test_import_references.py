"""Imports check the references they write themselves (store.bulk.check_references): on
SQLite the database's per-row foreign-key checks are off during an import transaction, and
only during it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import text

from encours.generate import generate_portfolio
from encours.imports.load import ImportRejected
from encours.services.imports import import_file
from encours.store.bulk import FOREIGN_KEYS_OFF, DanglingReference, insert_frame
from encours.store.db import get_engine, unit_of_work
from encours.store.schema import Allocation, Document


def _foreign_keys_on(url: str) -> list[int]:
    """PRAGMA foreign_keys of every connection the pool holds (SQLite)."""
    engine = get_engine(url)
    values = []
    with engine.connect() as a, engine.connect() as b:
        for conn in (a, b):
            values.append(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
    return values


def test_a_portfolio_import_leaves_no_dangling_reference(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "p"
    generate_portfolio(out, customers=60, invoices=1500, seed=5, end=dt.date(2025, 6, 30))
    for kind in ("customers", "invoices", "payments"):
        import_file(out / f"{kind}.csv", kind, db_url=db_url, actor="test")
    with unit_of_work(db_url) as conn:
        orphans = conn.execute(text(
            "SELECT COUNT(*) FROM allocations a "
            "LEFT JOIN documents d ON d.id = a.invoice_id "
            "LEFT JOIN payments p ON p.id = a.payment_id "
            "LEFT JOIN documents c ON c.id = a.credit_note_id "
            "WHERE d.id IS NULL OR (a.payment_id IS NOT NULL AND p.id IS NULL) "
            "OR (a.credit_note_id IS NOT NULL AND c.id IS NULL)"
        )).scalar_one()  # fmt: skip
        assert orphans == 0
        assert conn.execute(text("SELECT COUNT(*) FROM allocations")).scalar_one() > 1000
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    if db_url.startswith("sqlite"):
        assert _foreign_keys_on(db_url) == [1, 1]  # back on for every later transaction


def test_checks_are_back_on_after_a_rejected_import(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "invoices.csv"
    bad.write_text("invoice_number,customer_id,customer_name,issue_date,due_date,amount,currency\n"
                   "F1,C1,Alpha,2024-01-05,2024-02-04,abc,EUR\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(ImportRejected):
        import_file(bad, "invoices", db_url=db_url)
    if db_url.startswith("sqlite"):
        assert _foreign_keys_on(db_url) == [1, 1]


def test_a_dangling_reference_is_refused_and_nothing_is_written(db_url: str) -> None:
    frame = pl.DataFrame({"id": [1], "invoice_id": [999], "payment_id": [None],
                          "credit_note_id": [2], "amount_minor": [100],
                          "date": [dt.date(2024, 1, 1)]},
                         schema_overrides={"payment_id": pl.Int64})  # fmt: skip
    for enforce in (True, False):
        with (
            pytest.raises(DanglingReference, match="allocations.invoice_id: 1 row"),
            unit_of_work(db_url, enforce_foreign_keys=enforce) as conn,
        ):
            assert bool(conn.info.get(FOREIGN_KEYS_OFF)) is (
                not enforce and conn.dialect.name == "sqlite"
            )
            ids = pl.Series([1, 2], dtype=pl.Int64)
            insert_frame(conn, Allocation.__table__, frame,
                         {"invoice_id": ids, "credit_note_id": ids})  # fmt: skip
    with unit_of_work(db_url) as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM allocations")).scalar_one() == 0


def test_an_unchecked_write_is_refused_when_the_database_does_not_check(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL always checks references")
    frame = pl.DataFrame({"id": [1], "number": ["F1"], "customer_id": [42], "kind": ["invoice"],
                          "issue_date": [dt.date(2024, 1, 1)], "due_date": [dt.date(2024, 2, 1)],
                          "amount_minor": [100], "currency": ["EUR"]})  # fmt: skip
    with (
        pytest.raises(ValueError, match="documents.customer_id: references unchecked"),
        unit_of_work(db_url, enforce_foreign_keys=False) as conn,
    ):
        insert_frame(conn, Document.__table__, frame)
    # with the database checking, the same unchecked write is the database's to refuse
    with pytest.raises(Exception, match="FOREIGN KEY"), unit_of_work(db_url) as conn:
        insert_frame(conn, Document.__table__, frame)
