"""Financial statements entered from the web: /customers/{code}/statements (credit managers
and admins), CSRF-protected, audited, with the scores shown back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import csrf_of
from encours.store.db import unit_of_work
from encours.store.risk_schema import FinancialStatement
from encours.store.schema import AuditEntry, Customer
from encours.web.roles import ROLES

CM_ONLY = {"admin", "credit_manager"}


def _csrf(client: TestClient) -> str:
    page = client.get("/customers").text
    return csrf_of(page.replace('meta name="csrf-token" content=', 'name="csrf_token" value='))


@pytest.fixture(scope="module")
def code(web_db_url: str) -> str:
    with unit_of_work(web_db_url) as conn:
        table = Customer.__table__
        return conn.execute(select(table.c.code).order_by(table.c.id).limit(1)).scalar_one()


@pytest.mark.parametrize("role", ROLES)
def test_statements_page_roles(clients, code: str, role: str) -> None:  # noqa: ANN001
    client = clients[role]
    r = client.get(f"/customers/{code}/statements")
    post = client.post(f"/customers/{code}/statements",
                       data={"csrf_token": _csrf(client), "fiscal_year": "x"})  # fmt: skip
    if role in CM_ONLY:
        assert r.status_code == 200 and 'id="statements-form"' in r.text
        assert post.status_code == 422  # incomplete input: refused, nothing saved
    else:
        assert (r.status_code, post.status_code) == (403, 403)


def test_statements_form_saves_audits_and_shows_scores(clients, web_db_url, code) -> None:  # noqa: ANN001
    cm = clients["credit_manager"]
    url = f"/customers/{code}/statements"
    assert cm.get("/customers/NO-SUCH-CODE/statements").status_code == 404
    form = {"fiscal_year": "2024", "period_end": "2024-12-31", "total_assets": "1 000",
            "current_assets": "500", "current_liabilities": "300",
            "retained_earnings": "150", "ebit": "80", "equity": "400,50",
            "total_liabilities": "600"}  # fmt: skip
    # without the CSRF token: refused
    assert cm.post(url, data=form).status_code == 403
    r = cm.post(url, data={**form, "csrf_token": csrf_of(cm.get(url).text)})
    assert r.status_code == 200, r.text[-800:]
    assert 'id="statements-notice"' in r.text and "2024" in r.text
    assert 'id="year-2024"' in r.text
    with unit_of_work(web_db_url) as conn:
        table = FinancialStatement.__table__
        customer_id = conn.execute(select(Customer.id).where(Customer.code == code)).scalar_one()
        query = select(table).where(table.c.customer_id == customer_id, table.c.fiscal_year == 2024)
        row = conn.execute(query).mappings().one()
        audit = AuditEntry.__table__
        entries = conn.execute(select(audit).where(audit.c.entity == "financial_statement",
                                                   audit.c.entity_key == f"{code}/2024")
                               ).mappings().all()  # fmt: skip
    assert (row["total_assets_minor"], row["equity_minor"], row["revenue_minor"]) == (
        100000,
        40050,
        None,
    )
    assert row["source"] == "web"
    assert [(e["action"], e["actor"]) for e in entries] == [("enter_statement",
                                                             "u_credit_manager")]  # fmt: skip
    # bad amounts: every problem listed, nothing replaced
    r = cm.post(url, data={"csrf_token": csrf_of(cm.get(url).text), "fiscal_year": "2024",
                           "equity": "lots", "ebit": "1.005"})  # fmt: skip
    assert r.status_code == 422 and "lots" in r.text
    r = cm.post(url, data={"csrf_token": csrf_of(cm.get(url).text), "fiscal_year": "2024",
                           "ebit": "1.005"})  # fmt: skip
    assert r.status_code == 422
    with unit_of_work(web_db_url) as conn:
        audit = AuditEntry.__table__
        count = conn.execute(select(audit.c.id).where(
            audit.c.entity_key == f"{code}/2024")).all()  # fmt: skip
    assert len(count) == 1
