"""Browser test of the collections screens (Playwright + Debian's Chromium, real uvicorn):
log in as a collector, portfolio -> customer -> record a promise -> the timeline and the
worklist change; one click from the worklist updates it in place; then a sales user
approves the dunning level that waits for sales."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from test_browser import ARTIFACTS, CHROMIUM
from test_browser import browser as browser_fixture
from test_browser import server as server_fixture

from conftest import AS_OF, PASSWORD, SALES_OWNER
from encours.collections import policies
from encours.collections.engine import run_dunning
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication
from encours.store.schema import Customer
from encours.web.accounts import create_user

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
DAY = AS_OF.isoformat()
browser = browser_fixture  # the module-scoped fixtures of test_browser, for this module
server = server_fixture


def _login(browser, server: str, user: str):  # noqa: ANN001, ANN202
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{server}/portfolio?as_of={DAY}&lang=en")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#kpi-outstanding")
    return page


def test_collector_records_a_promise_then_sales_approves_a_level(
    server: str,
    browser,  # noqa: ANN001
    clients,  # noqa: ANN001
    web_db_url: str,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    items = (
        clients["admin"]
        .get("/api/v1/worklist", params={"as_of": DAY, "collector": "*"})
        .json()["items"]
    )
    target = next(i for i in items if i["next_action"] != "promise")
    with unit_of_work(web_db_url) as conn:
        create_user(conn, "u_coll_browser", "collector", PASSWORD, actor="test",
                    owner_name=target["collector"])  # fmt: skip
    page = _login(browser, server, "u_coll_browser")

    # portfolio -> customers -> the customer
    page.goto(f"{server}/customers?q={target['code']}&as_of={DAY}")
    page.locator("#customer-table a", has_text=target["name"]).first.click()
    page.wait_for_selector("#customer-actions")  # the collections section, loaded by HTMX
    page.fill("#form-promise input[name=promised_date]", "2025-07-21")
    page.fill("#form-promise input[name=amount]", "1500")
    page.click("#form-promise button[type=submit]")
    page.wait_for_selector("#timeline")
    assert "1500.00 EUR" in page.inner_text("#timeline")
    assert "2025-07-21" in page.inner_text("#timeline")
    page.screenshot(path=str(ARTIFACTS / "customer-promise.png"), full_page=True)

    # the worklist shows the promise as the account's next action
    page.goto(f"{server}/worklist?as_of={DAY}")
    row = page.locator(f"#worklist tr[data-code='{target['code']}']")
    assert "21 Jul 2025" in row.locator(".next-action").inner_text()
    # one click: "no answer" on another row, the list is replaced in place (no reload)
    others = page.locator("#worklist tbody tr[data-code]")
    other_code = others.last.get_attribute("data-code")
    page.evaluate("window.__marker = 1")
    with page.expect_response(lambda r: r.url.endswith(f"/customers/{other_code}/call")):
        others.last.locator("button[value=no_answer]").click()
    page.wait_for_selector("#worklist")
    assert page.evaluate("window.__marker") == 1  # same document: swapped by HTMX
    page.screenshot(path=str(ARTIFACTS / "worklist.png"), full_page=True)
    page.close()

    # a level waiting for sales: gentle policy on the sales user's accounts, a later run
    later = AS_OF + dt.timedelta(days=60)
    with unit_of_work(web_db_url) as conn:
        codes = list(conn.execute(select(Customer.code).where(
            Customer.account_owner == SALES_OWNER)).scalars())  # fmt: skip
        for code in codes:
            policies.assign(conn, "customer", code, "gentle", "test")
        run_dunning(conn, later, actor="test")
        draft = conn.execute(select(Communication.id, Customer.code).join(
            Customer, Customer.id == Communication.customer_id).where(
            Communication.status == "draft", Communication.requires_approval_by == "sales")
        ).first()  # fmt: skip
    assert draft is not None
    try:
        page = _login(browser, server, "u_sales")
        page.goto(f"{server}/dunning?as_of={later.isoformat()}")
        row = page.locator(f"#approvals tr[data-code='{draft.code}']")
        row.locator("button[type=submit]").click()
        page.wait_for_load_state()
        assert page.locator(f"#approvals tr[data-code='{draft.code}']").count() == 0
        page.screenshot(path=str(ARTIFACTS / "dunning-approved.png"), full_page=True)
        page.close()
        with unit_of_work(web_db_url) as conn:
            status, by = conn.execute(select(Communication.status, Communication.approved_by)
                                      .where(Communication.id == draft.id)).one()  # fmt: skip
        assert status == "approved" and by == "sales:u_sales"
    finally:
        with unit_of_work(web_db_url) as conn:
            for code in codes:
                policies.assign(conn, "customer", code, None, "test")
            conn.execute(update(Communication).where(Communication.as_of == later)
                         .values(status="cancelled"))  # fmt: skip
