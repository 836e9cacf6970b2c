"""The derived caches of web/queries.py: the per-customer index gives the same rows and KPIs
as a filter of the whole portfolio, and a cached dashboard follows every write."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl
from sqlalchemy import text

from encours.analytics.snapshots import take_snapshot
from encours.generate import generate_portfolio
from encours.services.imports import import_file
from encours.store import positions as positions_store
from encours.store.db import unit_of_work
from encours.web import queries
from encours.web.accounts import Principal

AS_OF = dt.date(2025, 6, 30)
ADMIN = Principal(name="a", role="admin")


def test_customer_index_matches_portfolio_filters(web_db_url: str) -> None:
    queries.clear_cache()
    data = queries.portfolio_data(web_db_url, AS_OF)
    index = queries.customer_index(data)
    ids = data.positions["customer_id"].unique().to_list()
    assert len(ids) >= 40
    with_kpis = 0
    for cid in [*ids, -1]:
        expected_rows = data.positions.filter(pl.col("customer_id") == cid).to_dicts()
        assert index.positions_of(cid) == expected_rows
        expected_kpis = queries.filtered_kpis(data, pl.Series([cid]))
        assert index.kpis_of(cid) == expected_kpis
        with_kpis += bool(expected_kpis)
    assert with_kpis >= 30  # real KPIs compared, not only empty dicts


def test_customer_history_is_the_snapshots_of_12_months(web_db_url: str) -> None:
    data = queries.portfolio_data(web_db_url, AS_OF)
    codes = data.positions.sort("balance_minor", descending=True)["code"].head(5).to_list()
    sql = text(
        "SELECT s.as_of, s.balance_minor, s.overdue_minor FROM customer_snapshots s "
        "JOIN customers c ON c.id = s.customer_id WHERE c.code = :code "
        "AND s.as_of > :start AND s.as_of <= :as_of ORDER BY s.as_of"
    )
    for code in codes:
        with unit_of_work(web_db_url) as conn:
            rows = conn.execute(sql, {"code": code, "start": dt.date(2024, 6, 30),
                                      "as_of": AS_OF}).all()  # fmt: skip
        expected = [(d if isinstance(d, dt.date) else dt.date.fromisoformat(d), int(b), int(o))
                    for d, b, o in rows]  # fmt: skip
        history = queries.customer_detail(web_db_url, code, AS_OF, ADMIN)["history"]
        assert history == expected
        assert history  # real rows compared (customers without balance have no snapshot row)


def _ledger(url: str, folder: Path) -> None:
    generate_portfolio(folder, customers=12, invoices=150, seed=5, end=AS_OF)
    for kind in ("customers", "invoices", "payments"):
        import_file(folder / f"{kind}.csv", kind, db_url=url, actor="test")


def test_cached_dashboard_follows_writes(db_url: str, tmp_path: Path) -> None:
    queries.clear_cache()
    _ledger(db_url, tmp_path / "p")
    filters = queries.Filters()
    first = queries.dashboard(db_url, AS_OF, ADMIN, filters)
    again = queries.dashboard(db_url, AS_OF, ADMIN, filters)
    assert again == first
    assert len(queries.portfolio_data(db_url, AS_OF).dashboards) == 1
    currency, open_before = first["currency"], first["totals"]["invoices_open_minor"]

    # a sales user without accounts sees nothing: a scope of its own, not the admin's entry
    sales = queries.dashboard(db_url, AS_OF, Principal(name="s", role="sales"), filters)
    assert sales["totals"] is None

    # a new invoice (import): a new ledger version, the dashboard is computed again
    with (tmp_path / "p" / "invoices.csv").open(newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    row.update(invoice_number="NEW-0001", issue_date="2025-06-01", due_date="2025-06-20",
               amount="1234.56", currency=currency, paid_date="", disputed="false",
               document_type="invoice", applies_to="")  # fmt: skip
    extra = tmp_path / "extra.csv"
    with extra.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    import_file(extra, "invoices", db_url=db_url, actor="test")
    after = queries.dashboard(db_url, AS_OF, ADMIN, filters)
    assert after["totals"]["invoices_open_minor"] == open_before + 123456
    assert after["totals"]["d1_30_minor"] == first["totals"]["d1_30_minor"] + 123456

    # a snapshot taken again (customer_snapshots rows replaced): trends are read again
    before_trend = after["trends"]["outstanding"]
    with unit_of_work(db_url) as conn:
        take_snapshot(conn, AS_OF)
    latest = queries.dashboard(db_url, AS_OF, ADMIN, filters)
    points = dict(latest["trends"]["outstanding"])
    assert points[AS_OF] == latest["totals"]["balance_minor"]
    assert AS_OF not in dict(before_trend)


def test_customer_detail_uses_current_version(db_url: str, tmp_path: Path) -> None:
    queries.clear_cache()
    _ledger(db_url, tmp_path / "p")
    data = queries.portfolio_data(db_url, AS_OF)
    top = data.positions.sort("balance_minor", descending=True).row(0, named=True)
    detail = queries.customer_detail(db_url, top["code"], AS_OF, ADMIN)
    assert [p["balance_minor"] for p in detail["positions"]] == [top["balance_minor"]]
    assert detail["kpis"] == queries.filtered_kpis(data, pl.Series([top["customer_id"]]))
    assert queries.customer_detail(db_url, "NO-SUCH", AS_OF, ADMIN) is None


def test_customer_open_invoices_from_the_cached_set(db_url: str, tmp_path: Path) -> None:
    queries.clear_cache()
    _ledger(db_url, tmp_path / "p")
    data = queries.portfolio_data(db_url, AS_OF)
    ids = data.positions["customer_id"].unique().sort().to_list()
    with unit_of_work(db_url) as conn:
        expected = {cid: positions_store.open_invoices(conn, AS_OF, cid) for cid in ids}
        # before the whole set is read: the customer's own query (and a background read)
        first = queries.customer_open_invoices(db_url, data, conn, ids[0])
    assert first.equals(expected[ids[0]])
    queries.ensure_open_invoices(db_url, data)
    assert data.open_by_customer is not None
    with unit_of_work(db_url) as conn:
        for cid in [*ids, -1]:
            got = queries.customer_open_invoices(db_url, data, conn, cid)
            want = expected.get(cid)
            if want is None:
                assert got.height == 0
            else:
                assert got.equals(want), cid
    assert sum(f.height for f in expected.values()) >= 5  # real rows compared
