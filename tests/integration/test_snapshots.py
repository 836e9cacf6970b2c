"""Month-end snapshots: contents, idempotence, monthly backfill and trends.

Runs on SQLite, and on PostgreSQL when ENCOURS_TEST_DB_URL is set (fixture `db_url`).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from encours.analytics import snapshots
from encours.analytics.snapshots import month_ends, take_monthly_snapshots, take_snapshot, trend
from encours.store.db import get_engine
from encours.store.schema import (
    Allocation,
    Customer,
    CustomerSnapshot,
    Document,
    Payment,
    PortfolioSnapshot,
)

D = dt.date
CS = CustomerSnapshot.__table__
PS = PortfolioSnapshot.__table__


@pytest.fixture
def kpi_db(db_url):
    """An engine on a fresh, migrated database (`db_url` of tests/conftest.py)."""
    return get_engine(db_url)


def _insert(conn, model, **values) -> int:  # noqa: ANN001
    return conn.execute(model.__table__.insert().values(**values)).inserted_primary_key[0]


def build_ledger(conn) -> dict[str, int]:  # noqa: ANN001
    """A (EUR): 2024-01-10 1000.00 due 02-09 paid 03-01; 2024-05-10 2000.00 due 06-09,
    500.00 paid 06-20; 2024-04-05 3000.00 due 05-05 open; unapplied credit note 100.00.
    D (EUR): 2024-04-25 900.00 due 05-25 open. B (USD): 2022-01-01 700.00 open.
    """
    a = _insert(conn, Customer, code="A", name="A", currency="EUR")
    d = _insert(conn, Customer, code="D", name="D", currency="EUR")
    b = _insert(conn, Customer, code="B", name="B", currency="USD")
    n = iter(range(1, 100))

    def invoice(cust, issue, due, amount, currency="EUR", kind="invoice") -> int:  # noqa: ANN001
        return _insert(
            conn, Document, number=f"F{next(n)}", kind=kind, customer_id=cust, issue_date=issue,
            due_date=due, amount_minor=amount, currency=currency,
        )  # fmt: skip

    def pay(cust, inv, day, amount) -> None:  # noqa: ANN001
        p = _insert(
            conn, Payment, reference=f"P{next(n)}", customer_id=cust, date=day,
            amount_minor=amount, currency="EUR",
        )  # fmt: skip
        _insert(conn, Allocation, invoice_id=inv, payment_id=p, amount_minor=amount, date=day)

    i0 = invoice(a, D(2024, 1, 10), D(2024, 2, 9), 100000)
    pay(a, i0, D(2024, 3, 1), 100000)
    i2 = invoice(a, D(2024, 5, 10), D(2024, 6, 9), 200000)
    pay(a, i2, D(2024, 6, 20), 50000)
    invoice(a, D(2024, 4, 5), D(2024, 5, 5), 300000)
    invoice(a, D(2024, 6, 1), D(2024, 6, 1), 10000, kind="credit_note")
    invoice(d, D(2024, 4, 25), D(2024, 5, 25), 90000)
    invoice(b, D(2022, 1, 1), D(2022, 1, 31), 70000, currency="USD")
    return {"A": a, "B": b, "D": d}


@pytest.fixture
def ledger(kpi_db):
    with kpi_db.begin() as conn:
        ids = build_ledger(conn)
    return kpi_db, ids


def _count(conn, table) -> int:  # noqa: ANN001
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_month_ends() -> None:
    assert month_ends(D(2024, 1, 15), D(2024, 4, 30)) == [
        D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31), D(2024, 4, 30)
    ]  # fmt: skip
    assert month_ends(D(2024, 1, 1), D(2024, 1, 30)) == []


def test_snapshot_contents_and_idempotence(ledger) -> None:
    engine, ids = ledger
    as_of = D(2024, 6, 30)
    with engine.connect() as conn:
        first = take_snapshot(conn, as_of)
        second = take_snapshot(conn, as_of)  # replaces, never duplicates
    assert first == second == {"customers": 3, "currencies": 2, "dropped": 0}
    with engine.connect() as conn:
        assert _count(conn, CS) == 3
        assert _count(conn, PS) == 2
        rows = {r.customer_id: r for r in conn.execute(select(CS))}
        kpis = {r.currency: r.kpis for r in conn.execute(select(PS))}
    a = rows[ids["A"]]
    assert a.as_of == as_of and a.currency == "EUR"
    # open: 1500 (due 06-09, 21 days late) + 3000 (due 05-05, 56 days) - credit note 100
    assert a.balance_minor == 450000 - 10000
    assert a.overdue_minor == 450000
    assert a.buckets["not_due"] == 0
    assert a.buckets["d1_30"] == 150000
    assert a.buckets["d31_60"] == 300000
    assert a.buckets["d121_plus"] == 0
    assert rows[ids["B"]].buckets["d121_plus"] == 70000
    eur = kpis["EUR"]
    assert eur["receivables_minor"] == 150000 + 300000 + 90000
    assert eur["balance_minor"] == 540000 - 10000
    # 5400 - June 0 -> 30 d; - May 2000 = 3400 -> 31 d; April 3900: 3400/3900 x 30 = 26.15
    assert eur["dso"] == 87.2
    assert eur["as_of"] == "2024-06-30"
    assert all(isinstance(v, int | float | str) for v in eur.values())
    assert "dso" not in kpis["USD"]  # undefined (no sale in 12 months) is left out


def test_snapshot_in_callers_transaction_rolls_back(ledger) -> None:
    engine, _ = ledger
    with engine.connect() as conn:
        conn.begin()
        take_snapshot(conn, D(2024, 6, 30))
        assert _count(conn, CS) == 3
        conn.rollback()
        assert _count(conn, CS) == 0


def test_customer_with_two_currencies(ledger) -> None:
    engine, ids = ledger
    with engine.begin() as conn:
        _insert(
            conn, Document, number="USD-1", kind="invoice", customer_id=ids["A"],
            issue_date=D(2024, 6, 1), due_date=D(2024, 7, 1), amount_minor=5000, currency="USD",
        )  # fmt: skip
    with engine.connect() as conn:
        stats = take_snapshot(conn, D(2024, 6, 30))
        rows = conn.execute(select(CS).where(CS.c.customer_id == ids["A"])).fetchall()
    if snapshots._unique_per_currency():
        assert stats["dropped"] == 0 and len(rows) == 2
    else:  # (as_of, customer_id) unique: the row in the customer's currency is kept
        assert stats["dropped"] == 1
        assert [r.currency for r in rows] == ["EUR"]


def test_monthly_snapshots_and_trend(ledger) -> None:
    engine, _ = ledger
    with engine.connect() as conn:
        days = take_monthly_snapshots(conn, D(2024, 1, 1), D(2024, 6, 30))
        take_monthly_snapshots(conn, D(2024, 5, 1), D(2024, 6, 30))  # re-run: replaced
    assert days == month_ends(D(2024, 1, 1), D(2024, 6, 30))
    with engine.connect() as conn:
        assert _count(conn, PS) == 6 * 2  # EUR and USD, every month, no duplicate
        points = trend(conn, "receivables_minor", months=12, as_of=D(2024, 6, 30))
        latest = trend(conn, "receivables_minor", months=3)
        usd = trend(conn, "receivables_minor", currency="USD")
    assert [p[0] for p in points] == days
    # Jan 1000 open; Feb 1000; Mar 0 (paid 03-01); Apr 3000 + 900; May + 2000; Jun - 500
    assert [p[1] for p in points] == [100000, 100000, 0, 390000, 590000, 540000]
    assert [p[0] for p in latest] == [D(2024, 4, 30), D(2024, 5, 31), D(2024, 6, 30)]
    assert [p[1] for p in usd] == [70000] * 6
