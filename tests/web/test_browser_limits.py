"""Browser test (Playwright + Debian's Chromium, real uvicorn): a credit limit changed on
the customer page becomes a request ("request created"), the author cannot approve it,
another credit manager approves it on /limits; the portfolio's risk-class filter updates
the page through HTMX."""

from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, CHROMIUM
from test_browser import browser as browser_fixture
from test_browser import server as server_fixture
from test_browser_collections import _login

from conftest import AS_OF

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
DAY = AS_OF.isoformat()
browser = browser_fixture  # the module-scoped fixtures of test_browser, for this module
server = server_fixture


def test_limit_change_is_a_request_approved_by_another_manager(browser, server) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(exist_ok=True)
    admin = _login(browser, server, "u_admin")
    pending = admin.request.get(f"{server}/api/v1/limit-requests").json()["items"]
    customers = admin.request.get(f"{server}/api/v1/customers?as_of={DAY}&per_page=500").json()
    busy = {r["customer_code"] for r in pending}
    code = [c["code"] for c in customers["items"] if c["code"] not in busy][-1]
    before = admin.request.get(f"{server}/api/v1/customers/{code}").json()["credit_limit"]
    admin.goto(f"{server}/customers/{code}?as_of={DAY}")
    admin.fill("input[name=credit_limit]", "7 777,00")
    admin.click("form[action$='/limit'] button[type=submit]")
    admin.wait_for_selector("#limits-notice")
    assert "created" in admin.locator("#limits-notice").inner_text()
    admin.screenshot(path=str(ARTIFACTS / "limit-request-created.png"), full_page=True)
    row = admin.locator("#limit-requests tr", has_text=code)
    assert "Another credit manager must decide" in row.inner_text()  # no approve button
    after = admin.request.get(f"{server}/api/v1/customers/{code}").json()["credit_limit"]
    assert after == before  # nothing applied yet
    admin.close()

    manager = _login(browser, server, "u_credit_manager")
    manager.goto(f"{server}/limits")
    row = manager.locator("#limit-requests tr", has_text=code)
    row.locator("button", has_text="Approve").click()
    manager.wait_for_url("**/limits")
    assert manager.locator("#limit-requests tr", has_text=code).count() == 0  # decided
    limit = manager.request.get(f"{server}/api/v1/customers/{code}").json()["credit_limit"]
    assert limit == "7777.00"
    manager.close()


def test_portfolio_risk_class_filter_updates_the_page(browser, server) -> None:  # noqa: ANN001
    page = _login(browser, server, "u_credit_manager")
    options = page.locator("select[name=class] option").all_inner_texts()
    assert options[1:] == ["A", "B", "C", "D", "E"]
    whole = page.locator("#portfolio-body").inner_text()
    with page.expect_response(lambda r: "class=E" in r.url and r.status == 200):
        page.select_option("select[name=class]", "E")
    page.wait_for_url("**class=E*")
    assert page.locator("select[name=class]").input_value() == "E"
    assert page.locator("#portfolio-body").inner_text() != whole
    page.screenshot(path=str(ARTIFACTS / "portfolio-class-E.png"), full_page=True)
    page.close()
