"""A customer's payment behaviour month by month (customer page)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from encours.analytics.payment_history import monthly_payment_behaviour
from encours.services.imports import import_file
from encours.store.db import unit_of_work
from encours.store.schema import Customer

INVOICES = """invoice_number,customer_id,customer_name,issue_date,due_date,amount,currency
F1,C1,Alpha,2024-01-05,2024-02-04,1000.00,EUR
F2,C1,Alpha,2024-02-01,2024-03-02,600.00,EUR
F3,C1,Alpha,2024-02-10,2024-03-11,400.00,EUR
F4,C1,Alpha,2024-05-01,2024-05-31,900.00,EUR
"""
PAYMENTS = """payment_id,customer_id,date,amount,currency,invoice_number
P1,C1,2024-02-04,1000.00,EUR,F1
P2,C1,2024-03-05,200.00,EUR,F2
P3,C1,2024-03-12,400.00,EUR,F2
P4,C1,2024-03-21,400.00,EUR,F3
P5,C1,2024-06-20,500.00,EUR,F4
"""


def _ledger(db_url: str, tmp: Path) -> int:
    for kind, text in (("invoices", INVOICES), ("payments", PAYMENTS)):
        path = tmp / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        import_file(path, kind, db_url=db_url)
    with unit_of_work(db_url) as conn:
        return conn.execute(select(Customer.id).where(Customer.code == "C1")).scalar_one()


def test_settlements_grouped_by_month(db_url: str, tmp_path: Path) -> None:
    cid = _ledger(db_url, tmp_path)
    with unit_of_work(db_url) as conn:
        frame = monthly_payment_behaviour(conn, cid, dt.date(2024, 6, 30))
    assert frame.height == 12
    assert frame["month"][0] == dt.date(2023, 7, 1) and frame["month"][-1] == dt.date(2024, 6, 1)
    rows = {r["month"]: r for r in frame.to_dicts() if r["settled"]}
    # F1 paid on its due date (February); F2 settled by its 2nd payment on 03-12 (10 days
    # late) and F3 on 03-21 (10 days late) in March; F4 only half paid: not settled
    assert set(rows) == {dt.date(2024, 2, 1), dt.date(2024, 3, 1)}
    assert rows[dt.date(2024, 2, 1)]["settled"] == 1
    assert rows[dt.date(2024, 2, 1)]["late_share"] == 0.0
    assert rows[dt.date(2024, 2, 1)]["avg_days_late"] == 0.0
    assert rows[dt.date(2024, 3, 1)]["settled"] == 2
    assert rows[dt.date(2024, 3, 1)]["late_share"] == 1.0
    assert rows[dt.date(2024, 3, 1)]["avg_days_late"] == 10.0


def test_replayed_for_a_past_day(db_url: str, tmp_path: Path) -> None:
    cid = _ledger(db_url, tmp_path)
    with unit_of_work(db_url) as conn:
        frame = monthly_payment_behaviour(conn, cid, dt.date(2024, 3, 15))
    rows = {r["month"]: r for r in frame.to_dicts() if r["settled"]}
    # on 03-15, F3 is not paid yet: March has F2 only
    assert rows[dt.date(2024, 3, 1)]["settled"] == 1
    assert frame["month"][-1] == dt.date(2024, 3, 1)


def test_customer_page_reads_it_once_per_ledger_version(db_url: str, tmp_path: Path) -> None:
    """The customer page keeps a customer's behaviour for the day's ledger version: the
    same data is not read twice, and a new payment (a new version) is seen at once."""
    from encours.web import queries
    from encours.web.accounts import Principal

    _ledger(db_url, tmp_path)
    admin, day = Principal(name="admin", role="admin"), dt.date(2024, 6, 30)
    first = queries.customer_detail(db_url, "C1", day, admin)
    again = queries.customer_detail(db_url, "C1", day, admin)
    assert first is not None and again is not None
    assert again["behaviour"] is first["behaviour"]  # kept, not read again
    june = {r["month"]: r["settled"] for r in first["behaviour"]}[dt.date(2024, 6, 1)]
    assert june == 0  # F4 half paid
    path = tmp_path / "more.csv"
    path.write_text("payment_id,customer_id,date,amount,currency,invoice_number\n"
                    "P6,C1,2024-06-25,400.00,EUR,F4\n", encoding="utf-8")  # fmt: skip
    import_file(path, "payments", db_url=db_url)
    after = queries.customer_detail(db_url, "C1", day, admin)
    assert after is not None
    rows = {r["month"]: r for r in after["behaviour"]}
    assert rows[dt.date(2024, 6, 1)]["settled"] == 1  # F4 settled on 06-25, 25 days late
    assert rows[dt.date(2024, 6, 1)]["avg_days_late"] == 25.0


def test_an_earlier_partial_payment_does_not_settle_it(db_url: str, tmp_path: Path) -> None:
    cid = _ledger(db_url, tmp_path)
    path = tmp_path / "split.csv"
    path.write_text("payment_id,customer_id,date,amount,currency,invoice_number\n"
                    "P7,C1,2024-06-02,450.00,EUR,F4\n", encoding="utf-8")  # fmt: skip
    import_file(path, "payments", db_url=db_url)  # P5 (06-20) and P7 (06-02): 950 >= 900
    with unit_of_work(db_url) as conn:
        frame = monthly_payment_behaviour(conn, cid, dt.date(2024, 6, 30))
    june = {r["month"]: r for r in frame.to_dicts()}[dt.date(2024, 6, 1)]
    assert june["settled"] == 1 and june["avg_days_late"] == 20.0  # settled 06-20
