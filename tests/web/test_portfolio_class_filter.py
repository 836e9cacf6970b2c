"""The portfolio's risk-class filter (?class=A..E): the totals, the top exposures and the
trends are those of the customers whose latest assessment on the day is of that class; a
new assessment changes the filtered figures (the dashboard cache key includes the class
and the assessments' version)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import AS_OF, login, portfolio_database
from encours.store.db import unit_of_work
from encours.store.risk_schema import RiskAssessment
from encours.store.schema import Customer
from encours.web import queries
from encours.web.accounts import Principal

ADMIN = Principal(name="admin", role="admin")
ASSESSMENTS = RiskAssessment.__table__


@pytest.fixture(scope="module")
def class_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A portfolio of its own (its assessments would change the other tests' class tiles)."""
    yield from portfolio_database(tmp_path_factory.mktemp("classes"), "tc")


def _assess(url: str, classes: dict[str, str], day: dt.date) -> None:
    with unit_of_work(url) as conn:
        ids = dict(conn.execute(select(Customer.code, Customer.id)).all())
        conn.execute(ASSESSMENTS.insert(), [
            {"customer_id": ids[code], "as_of": day, "risk_class": cls, "review_date": day,
             "source": "assess"} for code, cls in classes.items()])  # fmt: skip


def _balances(url: str) -> dict[str, int]:
    """Balance (minor units, main currency) of every customer with an open position."""
    frame, _total = queries.customer_list(url, AS_OF, ADMIN, queries.Filters(), per_page=10_000)
    return {r["code"]: r["balance_minor"] for r in frame.iter_rows(named=True)
            if r["currency"] == "EUR"}  # fmt: skip


def test_filtering_by_class_changes_the_totals(class_db_url: str, tmp_path: Path) -> None:
    balances = _balances(class_db_url)
    codes = sorted(c for c, b in balances.items() if b > 0)
    assert len(codes) >= 6
    a_codes, e_codes = codes[:3], codes[3:5]
    _assess(class_db_url, {**dict.fromkeys(a_codes, "A"), **dict.fromkeys(e_codes, "E")},
            AS_OF - dt.timedelta(days=10))  # fmt: skip
    # an assessment after the day does not count on the day
    _assess(class_db_url, {codes[5]: "A"}, AS_OF + dt.timedelta(days=1))

    whole = queries.dashboard(class_db_url, AS_OF, ADMIN, queries.Filters())
    by_a = queries.dashboard(class_db_url, AS_OF, ADMIN, queries.Filters(risk_class="A"))
    by_e = queries.dashboard(class_db_url, AS_OF, ADMIN, queries.Filters(risk_class="E"))
    by_b = queries.dashboard(class_db_url, AS_OF, ADMIN, queries.Filters(risk_class="B"))
    assert by_a["totals"]["balance_minor"] == sum(balances[c] for c in a_codes)
    assert by_e["totals"]["balance_minor"] == sum(balances[c] for c in e_codes)
    assert whole["totals"]["balance_minor"] > by_a["totals"]["balance_minor"]
    assert by_b["totals"] is None  # nobody in class B
    assert {r["code"] for r in by_a["top_exposures"]} <= set(a_codes)
    # the trends follow the filter too (customer snapshots of the class-A customers)
    last_a = by_a["trends"]["outstanding"][-1][1]
    assert 0 < last_a < whole["trends"]["outstanding"][-1][1]
    # the customer list honours the filter as well
    frame, total = queries.customer_list(class_db_url, AS_OF, ADMIN,
                                         queries.Filters(risk_class="E"))  # fmt: skip
    assert total == 2 and set(frame["code"]) == set(e_codes)

    # a new assessment (ledger unchanged) moves a customer into class A: the cached
    # dashboard of class A is not reused
    _assess(class_db_url, {codes[5]: "A"}, AS_OF - dt.timedelta(days=1))
    again = queries.dashboard(class_db_url, AS_OF, ADMIN, queries.Filters(risk_class="A"))
    assert again["totals"]["balance_minor"] == sum(balances[c] for c in [*a_codes, codes[5]])


def test_the_portfolio_page_filters_by_class(class_db_url: str) -> None:
    from encours.web.app import create_app

    with unit_of_work(class_db_url) as conn:
        assessed = conn.execute(select(func.count()).select_from(ASSESSMENTS)).scalar_one()
    if not assessed:  # the first test ran on another xdist worker (on another database)
        codes = sorted(c for c, b in _balances(class_db_url).items() if b > 0)
        _assess(class_db_url, {**dict.fromkeys(codes[:3], "A"), **dict.fromkeys(codes[3:5], "E")},
                AS_OF - dt.timedelta(days=10))  # fmt: skip
    app = create_app(class_db_url)
    with TestClient(app, base_url="https://testserver") as client:
        login(client, "u_credit_manager")
        day = {"as_of": AS_OF.isoformat()}

        def outstanding(**params: str) -> str:
            r = client.get("/portfolio", params={**day, **params})
            assert r.status_code == 200, r.text[:300]
            return re.search(r'id="kpi-outstanding">([^<]+)<', r.text).group(1)

        whole, only_a = outstanding(), outstanding(**{"class": "A"})
        assert whole != only_a
        assert outstanding(**{"class": ""}) == whole  # "all classes"
        page = client.get("/portfolio", params={**day, "class": "A"}).text
        assert re.search(r"<option selected>A</option>", page)
        # the HTMX partial of the filter form
        htmx = {"HX-Request": "true", "HX-Target": "portfolio-body"}
        partial = client.get("/portfolio", params={**day, "class": "E"}, headers=htmx)
        assert partial.status_code == 200 and "<html" not in partial.text
        assert client.get("/portfolio", params={**day, "class": "F"}).status_code == 422
        assert client.get("/portfolio", params={**day, "class": "A' OR 1=1"}).status_code == 422
