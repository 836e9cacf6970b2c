"""Browser tests: Playwright driving Debian's Chromium (headless) against a real uvicorn
server on a loopback port. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import AS_OF, PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent "
                                "(apt-get install -y chromium)")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(app) -> Iterator[str]:  # noqa: ANN001
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


def test_login_portfolio_customer_and_bad_import(server: str, browser, tmp_path) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{server}/portfolio?as_of={AS_OF.isoformat()}")
    assert "/login" in page.url  # not logged in: sent to the login page
    page.fill("input[name=username]", "u_admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#kpi-outstanding")
    assert "Encours total" in page.content()  # French by default
    page.screenshot(path=str(ARTIFACTS / "portfolio.png"), full_page=True)

    # HTMX filter: the body is replaced without a full reload
    options = page.locator("select[name=segment] option").all_inner_texts()
    with page.expect_response(lambda r: "segment=" in r.url and r.status == 200):
        page.select_option("select[name=segment]", options[1])
    page.wait_for_url("**segment=*")
    assert page.locator("select[name=segment]").input_value() == options[1]

    page.goto(f"{server}/portfolio?as_of={AS_OF.isoformat()}")
    page.locator("#top-exposures a").first.click()
    page.wait_for_selector("#open-invoices")
    assert page.locator("#customer-balance").inner_text().endswith("€")
    page.screenshot(path=str(ARTIFACTS / "customer.png"), full_page=True)

    bad = tmp_path / "invoices.csv"
    bad.write_text("invoice_number,customer_id,issue_date,due_date,amount,currency\n"
                   "BR-1,C000001,2025-05-01,2025-05-31,100.00,EUR\n"
                   "BR-2,C000001,2025-05-02,2025-06-01,douze,EUR\n", encoding="utf-8")  # fmt: skip
    page.goto(f"{server}/imports?lang=en")
    page.select_option("select[name=kind]", "invoices")
    page.set_input_files("input[name=file]", str(bad))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_selector("#import-report")
    report = page.locator("#import-report").inner_text()
    assert "1 invalid row" in report and "douze" in report and "amount" in report
    assert page.locator("#confirm-import").count() == 0
    page.screenshot(path=str(ARTIFACTS / "import-error.png"), full_page=True)
    page.close()
