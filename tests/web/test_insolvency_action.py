"""The customer page's insolvency action: credit managers (and admins) record and end the
proceedings (audited, with the claim task), the other roles get 403, CSRF is required."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import AS_OF, csrf_of
from encours.store.collections_schema import Task
from encours.store.db import unit_of_work
from encours.store.schema import AuditEntry, Customer
from encours.web.roles import ROLES, allowed

DAY = AS_OF.isoformat()
CUSTOMERS = Customer.__table__
TASKS = Task.__table__
AUDIT = AuditEntry.__table__


def _code(client: TestClient, index: int) -> str:
    r = client.get("/api/v1/customers", params={"as_of": DAY, "per_page": 500})
    return sorted(i["code"] for i in r.json()["items"])[index]


def _page(client: TestClient, code: str) -> str:
    r = client.get(f"/customers/{code}", params={"as_of": DAY})
    assert r.status_code == 200, r.text
    return r.text


def _state(url: str, code: str) -> tuple:
    with unit_of_work(url) as conn:
        row = conn.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.in_insolvency, CUSTOMERS.c.insolvency_date,
                   CUSTOMERS.c.insolvency_kind).where(CUSTOMERS.c.code == code)
        ).one()  # fmt: skip
    return tuple(row)


def test_only_admin_and_credit_manager_may() -> None:
    assert {r for r in ROLES if allowed(r, "customers.insolvency")} == {"admin", "credit_manager"}


def test_credit_manager_records_and_ends_the_proceedings(clients, web_db_url) -> None:  # noqa: ANN001
    manager = clients["credit_manager"]
    code = _code(manager, 3)
    page = _page(manager, code)
    assert 'id="insolvency-form"' in page
    token = csrf_of(page)
    # without the token, or with a forged one: refused, nothing changes
    for data in (
        {"judgment_date": "2025-05-12", "kind": "redressement"},
        {"judgment_date": "2025-05-12", "kind": "redressement", "csrf_token": "x"},
    ):
        r = manager.post(f"/customers/{code}/insolvency", data=data, follow_redirects=False)
        assert r.status_code == 403
    customer_id, flag, _day, _kind = _state(web_db_url, code)
    assert flag is False
    # a bad kind or date: 422, nothing changes
    for data in (
        {"judgment_date": "2025-05-12", "kind": "faillite"},
        {"judgment_date": "12/05/2025", "kind": "redressement"},
    ):
        r = manager.post(f"/customers/{code}/insolvency", data={**data, "csrf_token": token},
                         follow_redirects=False)  # fmt: skip
        assert r.status_code == 422, r.text
    assert _state(web_db_url, code)[1] is False

    r = manager.post(f"/customers/{code}/insolvency", follow_redirects=False,
                     data={"judgment_date": "2025-05-12", "kind": "redressement",
                           "csrf_token": token})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{code}"
    assert _state(web_db_url, code)[1:] == (True, AS_OF.replace(month=5, day=12), "redressement")
    page = _page(manager, code)
    assert 'id="insolvency-form"' not in page and "/insolvency/end" in page
    assert "redressement" in page.split('id="customer-insolvency"')[1][:300]
    with unit_of_work(web_db_url) as conn:
        task = (
            conn.execute(
                select(TASKS).where(
                    TASKS.c.customer_id == customer_id, TASKS.c.kind == "declare_claim"
                )
            )
            .mappings()
            .one()
        )
        entry = (
            conn.execute(
                select(AUDIT).where(
                    AUDIT.c.action == "insolvency.declare", AUDIT.c.entity_key == code
                )
            )
            .mappings()
            .one()
        )
    assert task["status"] == "open" and task["due_day"].isoformat() == "2025-07-12"
    assert entry["actor"] == "u_credit_manager" and entry["before"]["in_insolvency"] is False

    r = manager.post(f"/customers/{code}/insolvency/end", follow_redirects=False,
                     data={"end_date": DAY, "csrf_token": token})  # fmt: skip
    assert r.status_code == 303
    assert _state(web_db_url, code)[1:] == (False, None, None)
    with unit_of_work(web_db_url) as conn:
        status = conn.execute(select(TASKS.c.status).where(TASKS.c.id == task["id"])).scalar()
        ended = (
            conn.execute(
                select(AUDIT).where(AUDIT.c.action == "insolvency.end", AUDIT.c.entity_key == code)
            )
            .mappings()
            .one()
        )
    assert status == "cancelled" and ended["actor"] == "u_credit_manager"
    # ending proceedings the customer is not in: 422
    r = manager.post(f"/customers/{code}/insolvency/end", follow_redirects=False,
                     data={"end_date": DAY, "csrf_token": token})  # fmt: skip
    assert r.status_code == 422


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("admin", "credit_manager")])
def test_other_roles_get_403(clients, web_db_url, role: str) -> None:  # noqa: ANN001
    client = clients[role]
    code = _code(clients["admin"], 4)
    html = client.get("/customers").text
    token = csrf_of(html.replace('meta name="csrf-token" content=', 'name="csrf_token" value='))
    for path, data in (
        (f"/customers/{code}/insolvency", {"judgment_date": "2025-05-12", "kind": "liquidation"}),
        (f"/customers/{code}/insolvency/end", {"end_date": DAY}),
    ):
        r = client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 403, (role, path, r.status_code)
    assert _state(web_db_url, code)[1] is False
    if role != "sales":  # sales sees only its own accounts (404 for the others)
        assert 'id="insolvency-form"' not in _page(client, code)
