"""POST /api/v1/order-check logs the check (`order_checks`, actor = the token) for the
monitor's "large order for a risky customer" rule; `?record=false` is a what-if check."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from encours.risk.classes import store_assessment
from encours.risk.monitor import run_monitor
from encours.store.alerts_schema import OrderCheck
from encours.store.db import get_engine, unit_of_work
from encours.store.risk_schema import RiskAssessment
from encours.store.schema import Customer

# A day after the shared portfolio's end: the rows written here are invisible as of AS_OF.
DAY = dt.date(2031, 3, 2)


def _count(url: str) -> int:
    with unit_of_work(url) as conn:
        stmt = select(func.count()).select_from(OrderCheck).where(OrderCheck.as_of == DAY)
        return conn.execute(stmt).scalar_one()


def test_api_order_check_is_logged_and_seen_by_the_monitor(clients, tokens, web_db_url) -> None:
    api = TestClient(clients["admin"].app, base_url="https://testserver")
    headers = {"Authorization": f"Bearer {tokens['credit_manager']}"}
    with unit_of_work(web_db_url) as conn:
        code, customer_id = conn.execute(
            select(Customer.code, Customer.id).order_by(Customer.id).limit(1)
        ).one()
        store_assessment(conn, customer_id, DAY, "D", [], source="test")
    try:
        before = _count(web_db_url)
        body = {"customer": code, "amount": "50000", "as_of": DAY.isoformat()}
        what_if = api.post("/api/v1/order-check", params={"record": "false"}, json=body,
                           headers=headers)  # fmt: skip
        assert what_if.status_code == 200, what_if.text
        assert what_if.json()["order_check_id"] is None
        assert _count(web_db_url) == before

        r = api.post("/api/v1/order-check", json=body, headers=headers)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["risk_class"] == "D" and isinstance(out["order_check_id"], int)
        assert _count(web_db_url) == before + 1
        with unit_of_work(web_db_url) as conn:
            row = conn.execute(select(OrderCheck.__table__).where(
                OrderCheck.id == out["order_check_id"])).mappings().one()  # fmt: skip
        assert (row["customer_id"], row["as_of"], row["risk_class"]) == (customer_id, DAY, "D")
        assert row["amount_minor"] == 50000_00 and row["decision"] == out["decision"]
        assert row["actor"] == "token:t_credit_manager"
        assert row["codes"] == out["codes"]

        # the monitor's rule sees it (run in a transaction rolled back: no alert kept)
        with get_engine(web_db_url).connect() as conn:
            report = run_monitor(conn, DAY, kinds=("large_order",))
            conn.rollback()
        assert report.counts["large_order"]["found"] == 1
        assert report.counts["large_order"]["new"] == 1
    finally:
        with unit_of_work(web_db_url) as conn:
            conn.execute(delete(OrderCheck).where(OrderCheck.as_of == DAY))
            conn.execute(delete(RiskAssessment).where(RiskAssessment.as_of == DAY))
