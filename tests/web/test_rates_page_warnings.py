"""The reference-rates settings page shows the same warnings as `encours rates list`."""

from __future__ import annotations

import datetime as dt
import html

from fastapi.testclient import TestClient

from conftest import login
from encours.domain.penalties import RateTable
from encours.store.db import unit_of_work
from encours.store.rates import (
    list_rates,
    missing_current_rate_warning,
    missing_legal_rate_warning,
)
from encours.web.formatting import gettext_for


def _expected(url: str, lang: str) -> list[str]:
    with unit_of_work(url) as conn:
        table = RateTable((r.kind, r.valid_from, r.rate) for r in list_rates(conn))
    today, translate = dt.date.today(), gettext_for(lang)
    return [w for w in (missing_current_rate_warning(table, today, translate),
                        missing_legal_rate_warning(table, today, translate)) if w]  # fmt: skip


def test_rates_page_shows_the_missing_rate_warnings(app, web_db_url) -> None:  # noqa: ANN001
    # An own client: `?lang=` sets the language cookie, which the shared clients must not get.
    with TestClient(app, base_url="https://testserver") as client:
        cm = login(client, "u_credit_manager")
        for lang in ("en", "fr"):
            _check_page(cm, web_db_url, lang)


def _check_page(cm: TestClient, web_db_url: str, lang: str) -> None:
    page = cm.get(f"/settings/rates?lang={lang}")
    assert page.status_code == 200
    expected = _expected(web_db_url, lang)
    # The shipped legal rates stop at 2025 H2: today's half-year has none.
    assert any("2.76" in w for w in expected)
    for warning in expected:
        assert warning in html.unescape(page.text)
    assert page.text.count('class="notice rates-warning"') == len(expected)
