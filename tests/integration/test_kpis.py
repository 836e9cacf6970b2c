"""KPIs (DSO count-back, BPDSO, ADD, CEI, WADP, WADL, late share) on a hand-built ledger.

Runs on SQLite, and on PostgreSQL when ENCOURS_TEST_DB_URL is set (fixture `db_url`).
Every expected value is computed by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from sqlalchemy import Date, bindparam, text

from encours.analytics.kpis import compute_kpis, count_back_dso, customer_kpis, month_back
from encours.store.db import get_engine
from encours.store.kpi_queries import _day_number, _yyyymmdd
from encours.store.schema import Allocation, Customer, Document, Payment

D = dt.date
AS_OF = D(2024, 6, 30)


@pytest.fixture
def kpi_db(db_url):
    """An engine on a fresh, migrated database (`db_url` of tests/conftest.py)."""
    return get_engine(db_url)


class Ledger:
    """Rows inserted directly with SQLAlchemy Core."""

    def __init__(self, conn) -> None:  # noqa: ANN001
        self.conn = conn
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def customer(self, code: str, currency: str = "EUR") -> int:
        stmt = Customer.__table__.insert().values(code=code, name=code, currency=currency)
        return self.conn.execute(stmt).inserted_primary_key[0]

    def invoice(self, customer: int, issue: dt.date, due: dt.date, amount: int, **kw) -> int:
        values = {
            "number": f"F{self._next()}", "kind": "invoice", "customer_id": customer,
            "issue_date": issue, "due_date": due, "amount_minor": amount, "currency": "EUR",
        }  # fmt: skip
        values.update(kw)
        result = self.conn.execute(Document.__table__.insert().values(**values))
        return result.inserted_primary_key[0]

    def pay(self, customer: int, invoice: int, day: dt.date, amount: int, currency="EUR") -> int:  # noqa: ANN001
        stmt = Payment.__table__.insert().values(
            reference=f"P{self._next()}", customer_id=customer, date=day, amount_minor=amount,
            currency=currency,
        )  # fmt: skip
        payment = self.conn.execute(stmt).inserted_primary_key[0]
        self.conn.execute(
            Allocation.__table__.insert().values(
                invoice_id=invoice, payment_id=payment, amount_minor=amount, date=day
            )
        )
        return payment


def build_ledger(conn) -> dict[str, int]:  # noqa: ANN001
    """Customers A and D (EUR), B (USD). Amounts in cents.

    A: I1 2024-06-15 1000.00 due 07-15, paid 07-05 (after the as-of day: ignored on 06-30)
       I2 2024-05-10 2000.00 due 06-09, 500.00 paid 06-20 -> open 1500.00
       I3 2024-04-05 3000.00 due 05-05, open
       I4 2024-03-10 1200.00 due 04-09, paid 04-20 (settled 11 days late)
       I5 2024-01-15 4000.00 due 02-14, paid 1500.00 on 02-01 and 2500.00 on 02-10
       I6 2023-05-01  500.00 due 05-31, paid 2023-06-15 (settled before the 12-month window)
       a cancelled invoice of 5000.00 in June and an unapplied credit note of 100.00: ignored
    D: 2024-04-25 900.00 due 05-25, open
    B (USD): 2022-01-01 700.00 due 2022-01-31, open, no sale since
    E (CHF): an invoice settled by a credit note
    """
    lg = Ledger(conn)
    a, d = lg.customer("A"), lg.customer("D")
    b = lg.customer("B", "USD")
    i1 = lg.invoice(a, D(2024, 6, 15), D(2024, 7, 15), 100000)
    lg.pay(a, i1, D(2024, 7, 5), 100000)
    i2 = lg.invoice(a, D(2024, 5, 10), D(2024, 6, 9), 200000)
    lg.pay(a, i2, D(2024, 6, 20), 50000)
    lg.invoice(a, D(2024, 4, 5), D(2024, 5, 5), 300000)
    i4 = lg.invoice(a, D(2024, 3, 10), D(2024, 4, 9), 120000)
    lg.pay(a, i4, D(2024, 4, 20), 120000)
    i5 = lg.invoice(a, D(2024, 1, 15), D(2024, 2, 14), 400000)
    lg.pay(a, i5, D(2024, 2, 1), 150000)
    lg.pay(a, i5, D(2024, 2, 10), 250000)
    i6 = lg.invoice(a, D(2023, 5, 1), D(2023, 5, 31), 50000)
    lg.pay(a, i6, D(2023, 6, 15), 50000)
    lg.invoice(a, D(2024, 6, 3), D(2024, 7, 3), 500000, status="cancelled")
    lg.invoice(a, D(2024, 6, 1), D(2024, 6, 1), 10000, kind="credit_note")
    lg.invoice(d, D(2024, 4, 25), D(2024, 5, 25), 90000)
    lg.invoice(b, D(2022, 1, 1), D(2022, 1, 31), 70000, currency="USD")
    # E (CHF): 2024-06-01 300.00 due 07-01, settled on 06-10 by a credit note
    e = lg.customer("E", "CHF")
    i7 = lg.invoice(e, D(2024, 6, 1), D(2024, 7, 1), 30000, currency="CHF")
    cn = lg.invoice(e, D(2024, 6, 10), D(2024, 6, 10), 30000, currency="CHF", kind="credit_note")
    lg.conn.execute(
        Allocation.__table__.insert().values(
            invoice_id=i7, credit_note_id=cn, amount_minor=30000, date=D(2024, 6, 10)
        )
    )
    return {"A": a, "B": b, "D": d, "E": e, "I1": i1}


@pytest.fixture
def ledger(kpi_db):
    with kpi_db.begin() as conn:
        ids = build_ledger(conn)
    return kpi_db, ids


def test_month_back_keeps_month_ends_and_clamps() -> None:
    assert month_back(D(2024, 3, 31), 1) == D(2024, 2, 29)
    assert month_back(D(2024, 2, 29), 1) == D(2024, 1, 31)  # month-end stays month-end
    assert month_back(D(2024, 6, 30), 12) == D(2023, 6, 30)
    assert month_back(D(2024, 3, 15), 3) == D(2023, 12, 15)
    assert month_back(D(2024, 5, 30), 3) == D(2024, 2, 29)  # clamped


def test_count_back_beyond_lookback_cap_and_zero() -> None:
    days = np.full(12, 30)
    sales = np.full((4, 12), 100)
    sales[3] = 0
    out = count_back_dso(np.array([1500, 10_000, -5, 10]), sales, days)
    # 1500 > 12 x 100: 360 days + the 300 left at the 12-month daily average
    # (1200 / 360 per day) = 360 + 300 x 360 / 1200 = 450
    assert out[0] == pytest.approx(450.0)
    assert out[1] == 730.0  # 360 + 8800 x 0.3 = 2 999 -> capped at 730
    assert out[2] == 0.0  # credit balance
    assert np.isnan(out[3])  # balance without any sale in 12 months: undefined


def test_customer_kpis_by_hand(ledger) -> None:
    engine, ids = ledger
    with engine.connect() as conn:
        frame = customer_kpis(conn, AS_OF)
    rows = {r["customer_id"]: r for r in frame.iter_rows(named=True)}
    assert set(rows) == {ids["A"], ids["B"], ids["D"], ids["E"]}
    a = rows[ids["A"]]
    # Receivables of A on 06-30: I1 1000 (its 07-05 payment is ignored) + I2 1500 + I3 3000
    assert a["receivables_minor"] == 550000
    assert a["current_minor"] == 100000  # I1 due 07-15
    # Count-back from 06-30, periods (05-31, 06-30] 30 d, (04-30, 05-31] 31 d, (03-31, 04-30] 30 d
    # 5500 - June sales 1000 = 4500 -> 30 days; 4500 - May 2000 = 2500 -> 31 days;
    # April sales 3000 cover 2500: 2500 / 3000 x 30 = 25 days. DSO = 30 + 31 + 25 = 86
    assert a["dso"] == 86.0
    # BPDSO: current 1000 / sales of the 3 months (1000 + 2000 + 3000) x 91 days = 15.17
    assert a["bpdso"] == 15.2
    assert a["add"] == 70.8  # 86 - 15.1667 = 70.83
    # CEI over (05-31, 06-30]: R_begin (05-31) = I2 2000 + I3 3000 = 5000, sales = 1000,
    # R_end = 5500, current = 1000: (5000 + 1000 - 5500) / (5000 + 1000 - 1000) = 10 %
    assert a["cei"] == 10.0
    # Settled in (2023-06-30, 2024-06-30]: I4 1200 (41 days to pay, 11 late) and
    # I5 4000 (settled by its last payment 02-10: 26 days, not late); I6 is older.
    assert a["settled_12m"] == 2
    assert a["settled_12m_minor"] == 520000
    assert a["wadp"] == 29.5  # (1200 x 41 + 4000 x 26) / 5200 = 153200 / 5200 = 29.46
    assert a["wadl"] == 2.5  # 1200 x 11 / 5200 = 2.54
    assert a["late_share_count"] == 50.0  # 1 of 2
    assert a["late_share_amount"] == 23.1  # 1200 / 5200 = 23.08 %

    d = rows[ids["D"]]
    # 900 open; sales June 0, May 0 (61 days), April 900 covers it: 30 days -> 91
    assert d["dso"] == 91.0
    assert d["bpdso"] == 0.0  # nothing current
    assert d["wadp"] is None and d["settled_12m"] == 0

    b = rows[ids["B"]]
    assert b["currency"] == "USD"
    assert b["dso"] is None  # 700 open, no sale in 12 months: undefined
    assert b["add"] is None
    assert b["cei"] == 0.0  # (700 + 0 - 700) / (700 + 0 - 0)

    e = rows[ids["E"]]
    assert e["currency"] == "CHF"
    assert e["receivables_minor"] == 0 and e["dso"] == 0.0
    assert e["settled_12m"] == 1 and e["wadp"] == 9.0  # credit note on 06-10, issued 06-01
    assert e["wadl"] == 0.0 and e["late_share_count"] == 0.0
    assert e["cei"] == 100.0  # (0 + 300 - 0) / (0 + 300 - 0)


def test_dso_mid_month(ledger) -> None:
    engine, ids = ledger
    with engine.connect() as conn:
        a = compute_kpis(conn, D(2024, 6, 15), customer_id=ids["A"])["EUR"]
    # On 06-15: I1 1000 (issued that day) + I2 2000 (its 06-20 payment ignored) + I3 3000
    assert a["receivables_minor"] == 600000
    # Periods (05-15, 06-15] 31 d: sales 1000 -> 5000 left; (04-15, 05-15] 30 d: 2000 ->
    # 3000 left; (03-15, 04-15] 31 d: 3000 covers exactly 3000 -> 31 d. DSO = 31 + 30 + 31
    assert a["dso"] == 92.0
    assert a["bpdso"] == 15.3  # current 1000 / 6000 x 92 days = 15.33
    assert a["add"] == 76.7  # 92 - 15.33


def test_portfolio_kpis_count_back_on_totals(ledger) -> None:
    engine, _ = ledger
    with engine.connect() as conn:
        result = compute_kpis(conn, AS_OF)
    assert set(result) == {"CHF", "EUR", "USD"}
    eur = result["EUR"]
    assert eur["receivables_minor"] == 640000  # A 5500 + D 900
    assert eur["sales_12m_minor"] == 100000 + 200000 + 300000 + 120000 + 400000 + 90000
    # 6400 - June 1000 = 5400 (30 d); - May 2000 = 3400 (31 d);
    # April sales 3000 + 900 = 3900: 3400 / 3900 x 30 = 26.15 -> 87.15
    assert eur["dso"] == 87.2
    assert eur["bpdso"] == 13.2  # 1000 / 6900 x 91 = 13.19
    assert eur["add"] == 74.0  # 87.1538 - 13.1884 = 73.97
    # R_begin 5000 + 900, sales 1000, R_end 6400, current 1000: 500 / 5900 = 8.47 %
    assert eur["cei"] == 8.5
    assert eur["wadp"] == 29.5 and eur["late_share_count"] == 50.0
    assert result["USD"]["dso"] is None


def test_one_customer_and_cei_days(ledger) -> None:
    engine, ids = ledger
    with engine.connect() as conn:
        a = compute_kpis(conn, AS_OF, customer_id=ids["A"], cei_days=60)["EUR"]
    assert a["dso"] == 86.0
    # CEI over (05-01, 06-30]: R_begin (05-01) = I3 3000, sales = I2 2000 + I1 1000,
    # R_end 5500, current 1000: (3000 + 3000 - 5500) / (3000 + 3000 - 1000) = 10 %
    assert a["cei"] == 10.0
    assert a["cei_days"] == 60


def test_allocations_after_as_of_are_ignored(ledger) -> None:
    engine, ids = ledger
    with engine.connect() as conn:
        before = compute_kpis(conn, AS_OF, customer_id=ids["A"])["EUR"]
        after = compute_kpis(conn, D(2024, 7, 10), customer_id=ids["A"])["EUR"]
        early = compute_kpis(conn, D(2024, 4, 19), customer_id=ids["A"])["EUR"]
    assert before["settled_12m"] == 2
    # On 07-10 I1 is settled (paid 07-05, issued 06-15: 20 days, on time)
    assert after["settled_12m"] == 3
    assert after["receivables_minor"] == 450000
    # (1200 x 41 + 4000 x 26 + 1000 x 20) / 6200 = 173200 / 6200 = 27.94
    assert after["wadp"] == 27.9
    # On 04-19 I4 (paid 04-20) is still open and I1, I2 are not issued yet
    assert early["receivables_minor"] == 300000 + 120000
    # Window (2023-04-19, 2024-04-19]: I5 and I6 (settled 2023-06-15, 45 days, 15 late)
    assert early["settled_12m"] == 2
    assert early["wadl"] == 1.7  # 500 x 15 / 4500 = 1.67
    assert early["wadp"] == 28.1  # (500 x 45 + 4000 x 26) / 4500 = 126500 / 4500 = 28.11


def test_empty_ledger(kpi_db) -> None:
    with kpi_db.connect() as conn:
        assert compute_kpis(conn, AS_OF) == {}
        assert customer_kpis(conn, AS_OF).height == 0


def test_sql_day_number_matches_python(kpi_db) -> None:
    """The portable day count of kpi_queries agrees with Python on both databases."""
    rng = random.Random(7)
    days = [D(1999, 12, 31), D(2000, 2, 28), D(2000, 2, 29), D(2000, 3, 1), D(2024, 2, 29),
            D(2024, 3, 1), D(2100, 2, 28), D(2100, 3, 1), D(1900, 3, 1), D(2023, 1, 1)]  # fmt: skip
    days += [D(1990, 1, 1) + dt.timedelta(days=rng.randrange(60 * 365)) for _ in range(40)]
    expr = _day_number(_yyyymmdd(":day"))
    stmt = text(f"SELECT {expr}").bindparams(bindparam("day", type_=Date))
    with kpi_db.connect() as conn:
        numbers = [conn.execute(stmt, {"day": day}).scalar_one() for day in days]
    for day, number in zip(days, numbers, strict=True):
        assert number - numbers[0] == (day - days[0]).days, day
