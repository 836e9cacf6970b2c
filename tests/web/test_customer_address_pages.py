"""The customer's postal address on the web: the onboarding form takes it, the customer page
shows it next to the contacts (TestClient), and a real Chromium fills the form."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_browser import ARGS, CHROMIUM
from test_browser import server as server_fixture

from conftest import AS_OF, PASSWORD, csrf_of
from encours.store.db import unit_of_work
from encours.store.schema import Customer

DAY = {"as_of": AS_OF.isoformat()}


def _customer(url: str, code: str) -> dict:
    table = Customer.__table__
    with unit_of_work(url) as conn:
        return dict(conn.execute(select(table).where(table.c.code == code)).mappings().one())


def test_onboarding_with_address_and_customer_page(clients, web_db_url) -> None:  # noqa: ANN001
    cm = clients["credit_manager"]
    form = {
        "csrf_token": csrf_of(cm.get("/onboarding").text),
        "code": "ADDR1",
        "name": "Chaudronnerie du Rhône SARL",
        "country": "FR",
        "address_line1": "14 quai du Port",
        "address_line2": "ZI Nord",
        "postal_code": "01000",
        "city": "Bourg-en-Bresse",
        "checklist": ["contract", "payment_terms", "penalty_clause"],
        "as_of": AS_OF.isoformat(),
    }
    assert 'name="postal_code"' in cm.get("/onboarding").text
    r = cm.post("/onboarding", data=form)
    assert r.status_code == 200, r.text[-1000:]
    row = _customer(web_db_url, "ADDR1")
    assert (row["address_line1"], row["address_line2"], row["postal_code"], row["city"]) == (
        "14 quai du Port", "ZI Nord", "01000", "Bourg-en-Bresse")  # fmt: skip
    page = cm.get("/customers/ADDR1", params=DAY).text
    block = page.split('id="customer-address"', 1)[1].split("</address>", 1)[0]
    assert "14 quai du Port" in block and "ZI Nord" in block and "01000 Bourg-en-Bresse" in block
    # a bad French postal code: refused, the form keeps what was typed
    r = cm.post("/onboarding", data={**form, "code": "ADDR2", "postal_code": "1000"})
    assert r.status_code == 422 and 'value="Bourg-en-Bresse"' in r.text


def test_customer_without_address_shows_no_none(clients, web_db_url) -> None:  # noqa: ANN001
    table = Customer.__table__
    with unit_of_work(web_db_url) as conn:
        code = conn.execute(select(table.c.code).order_by(table.c.id)).scalars().first()
        conn.execute(
            table.update().where(table.c.code == code).values(
                address_line1=None, address_line2=None, postal_code=None, city=None)
        )  # fmt: skip
    page = clients["admin"].get(f"/customers/{code}", params=DAY).text
    assert 'id="customer-address"' in page and "None" not in page


def test_generated_customer_address_in_page_and_api(clients, web_db_url) -> None:  # noqa: ANN001
    table = Customer.__table__
    with unit_of_work(web_db_url) as conn:
        row = conn.execute(
            select(table).where(table.c.city.is_not(None)).order_by(table.c.id.desc())
        ).mappings().first()  # fmt: skip
    admin = clients["admin"]
    page = admin.get(f"/customers/{row['code']}", params=DAY).text
    assert row["address_line1"] in page and f"{row['postal_code']} {row['city']}" in page
    body = admin.get(f"/api/v1/customers/{row['code']}", params=DAY).json()
    assert {"address_line1", "address_line2", "postal_code", "city"} <= set(body)


# -- Chromium ------------------------------------------------------------------------------


server = server_fixture  # the module-scoped live server of test_browser, for this module


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_browser_onboard_with_address(server: str, web_db_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server}/login")
            page.fill("input[name=username]", "u_credit_manager")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.goto(f"{server}/onboarding")
            page.fill("input[name=code]", "ADDR-B")
            page.fill("input[name=name]", "Ateliers de Savoie SAS")
            page.fill("input[name=address_line1]", "5 route des Alpes")
            page.fill("input[name=postal_code]", "74000")
            page.fill("input[name=city]", "Annecy")
            page.click("#onboarding-form button[type=submit]")
            page.wait_for_selector("#onboarding-result")
            page.goto(f"{server}/customers/ADDR-B?as_of={AS_OF.isoformat()}")
            text = page.locator("#customer-address").inner_text()
        finally:
            browser.close()
    assert "5 route des Alpes" in text and "74000 Annecy" in text
    assert _customer(web_db_url, "ADDR-B")["postal_code"] == "74000"
