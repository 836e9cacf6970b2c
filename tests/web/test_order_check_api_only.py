"""The order check's two-statement read and the API-only application (`encours serve
--api-only`): same answers as the full application, no pages, tokens revoked at once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import AS_OF, SALES_OWNER
from encours.money import to_minor
from encours.risk.classes import DEFAULT_POLICY, latest_assessment
from encours.risk.order_check import check_order, customer_exposure
from encours.store.db import unit_of_work
from encours.store.risk_schema import CustomerProfile
from encours.store.schema import Customer
from encours.web.accounts import create_token, revoke_token

DAY = AS_OF.isoformat()


@pytest.fixture(scope="module")
def api(web_db_url: str) -> Iterator[TestClient]:
    from encours.web.app import create_app

    with TestClient(create_app(web_db_url, api_only=True), base_url="https://testserver") as c:
        yield c


def test_inputs_match_the_separate_queries(web_db_url: str) -> None:
    """Exposure, class and profile of the one statement = the separate queries, for every
    customer (the decision rules themselves: tests/integration/test_order_check.py)."""
    with unit_of_work(web_db_url) as conn:
        customers = conn.execute(select(Customer.id, Customer.code, Customer.currency)).all()
        assert customers
        for cid, code, currency in customers:
            result = check_order(conn, code, Decimal("10"), AS_OF)
            position = customer_exposure(conn, cid, currency, AS_OF)
            assessment = latest_assessment(conn, cid, AS_OF)
            profile = conn.execute(select(CustomerProfile.prepayment_required).where(
                CustomerProfile.customer_id == cid)).scalar()  # fmt: skip
            assert result.customer_id == cid and result.currency == currency
            assert to_minor(result.exposure, currency) == position["exposure_minor"]
            assert result.risk_class == (assessment["risk_class"] if assessment else None)
            assert ("prepayment" in result.codes) == bool(profile)
            assert ("dispute" in result.codes) == (position["open_disputes"] > 0)
            assert ("overdue" in result.codes) == (
                position["max_days_overdue"] > DEFAULT_POLICY.warn_overdue_days
            )
        with pytest.raises(LookupError):
            check_order(conn, "NO-SUCH-CUSTOMER", Decimal("1"), AS_OF)
        with pytest.raises(LookupError):  # another owner's customer: as unknown
            check_order(conn, customers[0][1], Decimal("1"), AS_OF, owner_name="\u2400 nobody")


def test_api_only_app_answers_as_the_full_app(app, api: TestClient, tokens) -> None:  # noqa: ANN001
    full = TestClient(app, base_url="https://testserver")
    headers = {"Authorization": f"Bearer {tokens['credit_manager']}"}
    with unit_of_work(app.state.db_url) as conn:
        codes = list(conn.execute(select(Customer.code).order_by(Customer.id).limit(5)).scalars())
    for code in codes:
        body = {"customer": code, "amount": "1234.5", "as_of": DAY}
        a = api.post("/api/v1/order-check?record=false", json=body, headers=headers)
        b = full.post("/api/v1/order-check?record=false", json=body, headers=headers)
        assert a.status_code == b.status_code == 200, a.text
        assert a.json() == b.json()
        assert a.json()["order_check_id"] is None
    logged = api.post("/api/v1/order-check", json={"customer": codes[0], "amount": "1"},
                      headers=headers)  # fmt: skip
    assert logged.status_code == 200 and isinstance(logged.json()["order_check_id"], int)
    assert api.post("/api/v1/order-check", json={"customer": "NOPE", "amount": "1"},
                    headers=headers).status_code == 404  # fmt: skip
    # other API routes are there, the pages and static files are not
    assert api.get("/api/v1/customers", headers=headers).status_code == 200
    assert api.get("/health").status_code == 200
    spec = api.get("/openapi.json", headers=headers).json()
    assert "/api/v1/order-check" in spec["paths"]
    assert not [p for p in spec["paths"] if not p.startswith("/api/v1/")]
    assert api.get("/portfolio", headers=headers).status_code == 404
    assert api.get("/static/htmx.min.js").status_code == 404
    assert api.get("/api/v1/customers").status_code == 401  # no token, no session


def test_api_only_sales_token_sees_own_accounts(api: TestClient, tokens, web_db_url) -> None:  # noqa: ANN001
    headers = {"Authorization": f"Bearer {tokens['sales']}"}
    with unit_of_work(web_db_url) as conn:
        rows = conn.execute(select(Customer.code, Customer.account_owner)).all()
    own = [c for c, owner in rows if owner == SALES_OWNER]
    other = [c for c, owner in rows if owner != SALES_OWNER]
    if own:
        r = api.post("/api/v1/order-check?record=false", json={"customer": own[0], "amount": "1"},
                     headers=headers)  # fmt: skip
        assert r.status_code == 200, r.text
    if other:
        r = api.post("/api/v1/order-check?record=false",
                     json={"customer": other[0], "amount": "1"}, headers=headers)  # fmt: skip
        assert r.status_code == 404


def test_revoked_token_refused_at_once(api: TestClient, web_db_url: str) -> None:
    with unit_of_work(web_db_url) as conn:
        token = create_token(conn, "erp-api-only", "credit_manager", actor="test")
        code = conn.execute(select(Customer.code).limit(1)).scalar_one()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"customer": code, "amount": "1"}
    assert api.post("/api/v1/order-check?record=false", json=body, headers=headers
                    ).status_code == 200  # fmt: skip
    with unit_of_work(web_db_url) as conn:
        revoke_token(conn, "erp-api-only", actor="test")
    assert api.post("/api/v1/order-check?record=false", json=body, headers=headers
                    ).status_code == 401  # fmt: skip


def test_serve_options_in_help() -> None:
    from encours.cli.app import app as cli

    result = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--workers" in result.output and "--api-only" in result.output
