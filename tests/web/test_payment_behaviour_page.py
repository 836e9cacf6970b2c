"""The customer page shows the payment behaviour month by month."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from conftest import AS_OF
from encours.analytics.payment_history import monthly_payment_behaviour
from encours.store.db import unit_of_work
from encours.store.schema import Allocation, Customer, Document


def test_customer_page_has_the_payment_behaviour(clients, web_db_url) -> None:  # noqa: ANN001
    with unit_of_work(web_db_url) as conn:
        code, cid = conn.execute(
            select(Customer.code, Customer.id)
            .join(Document, Document.customer_id == Customer.id)
            .join(Allocation, Allocation.invoice_id == Document.id)
            .group_by(Customer.code, Customer.id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        expected = monthly_payment_behaviour(conn, cid, AS_OF)
    page = clients["collector"].get(f"/customers/{code}", params={"as_of": AS_OF.isoformat()})
    assert page.status_code == 200
    html = page.text
    assert 'id="payment-behaviour"' in html
    rows = re.findall(
        r"<tr><td>[^<]+</td><td>(\d+)</td>", html.split('id="payment-behaviour-table"')[1]
    )
    assert [int(n) for n in rows] == [n for n in expected["settled"].to_list() if n]
