"""The customer page's risk card shows the scores in detail (the payment-behaviour
scorecard lines, the ratios and failure scores of the latest financial statements), and
the risk-class filter (?class=A..E) reaches the customer list page, the /api/v1/customers
list and the portfolio's forecast tile."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import AS_OF, login, portfolio_database
from encours.risk.behaviour import behaviour_features, explain, score_features
from encours.risk.statements import customer_statements, save_statement
from encours.store.db import unit_of_work
from encours.store.risk_schema import RiskAssessment
from encours.store.schema import Customer, Document
from encours.web import queries
from encours.web.accounts import Principal
from encours.web.formatting import Formatter

DAY = {"as_of": AS_OF.isoformat(), "lang": "en"}
ADMIN = Principal(name="admin", role="admin")
STATEMENT = {  # inventories and the Conan-Holder lines unknown
    "revenue": "1000000", "current_assets": "400000", "current_liabilities": "200000",
    "total_assets": "800000", "equity": "300000", "total_liabilities": "500000",
    "retained_earnings": "100000", "ebit": "80000", "net_income": "50000",
}  # fmt: skip


@pytest.fixture(scope="module")
def own_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A portfolio of its own: its statements and assessments would change other tests."""
    yield from portfolio_database(tmp_path_factory.mktemp("scores"), "ts")


@pytest.fixture(scope="module")
def client(own_url: str) -> Iterator[TestClient]:
    from encours.web.app import create_app

    with TestClient(create_app(own_url), base_url="https://testserver") as c:
        yield login(c, "u_credit_manager")


def _customer_with_history(url: str, nth: int = 0) -> tuple[str, int]:
    with unit_of_work(url) as conn:
        return tuple(conn.execute(
            select(Customer.code, Customer.id).join(Document, Document.customer_id == Customer.id)
            .where(Document.issue_date <= AS_OF).group_by(Customer.code, Customer.id)
            .order_by(Customer.id).offset(nth).limit(1)
        ).one())  # type: ignore[return-value]  # fmt: skip


def test_risk_card_shows_the_scorecard_lines(client: TestClient, own_url: str) -> None:
    code, cid = _customer_with_history(own_url)
    with unit_of_work(own_url) as conn:
        scored = score_features(behaviour_features(conn, AS_OF))
    card = scored.filter(scored["customer_id"] == cid).row(0, named=True)
    lines = explain(card)
    r = client.get(f"/customers/{code}/collections", params=DAY)
    assert r.status_code == 200, r.text[-500:]
    table = re.search(r'<table class="small" id="behaviour-scorecard">(.*?)</table>', r.text,
                      re.S).group(1)  # fmt: skip
    rows = dict(re.findall(r'<tr data-feature="(\w+)">(.*?)</tr>', table, re.S))
    assert list(rows) == [line["feature"] for line in lines]
    fmt = Formatter("en")
    for line in lines:
        row = rows[line["feature"]]
        cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        assert cells[1] == fmt.number(line["value"])
        assert cells[2] == ("unknown" if line["bin"] == "?" else line["bin"])
        assert cells[3] == f"{line['points']} / {line['max_points']}"
    total = re.search(r'id="behaviour-total">([^<]+)<', r.text).group(1)
    assert total.startswith(f"{card['behaviour_points']} / ")
    assert sum(line["points"] for line in lines) == card["behaviour_points"]
    # no statements yet
    assert 'id="statement-none"' in r.text


def test_risk_card_shows_the_latest_statement_ratios_and_scores(
    client: TestClient, own_url: str
) -> None:
    code, cid = _customer_with_history(own_url, nth=1)  # not the first test's customer
    with unit_of_work(own_url) as conn:
        save_statement(conn, code, 2024, STATEMENT, period_end=dt.date(2024, 12, 31))
        # closed after the page's day: not yet available on it
        save_statement(conn, code, 2025, {**STATEMENT, "current_assets": "999999"},
                       period_end=dt.date(2025, 12, 31))  # fmt: skip
        evaluation = next(e for e in customer_statements(conn, cid) if e.fiscal_year == 2024)
    r = client.get(f"/customers/{code}/collections", params=DAY)
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert "Financial year 2024" in page and "Financial year 2025" not in page
    altman = re.search(r'<dd data-score="altman_z2">(.*?)</dd>', page, re.S).group(1)
    assert evaluation.altman.complete
    assert altman == f"{evaluation.altman.rounded()} ({evaluation.altman.zone})"
    conan = re.search(r'<dd data-score="conan_holder">(.*?)</dd>', page, re.S).group(1)
    assert not evaluation.conan_holder.complete
    assert "missing: " + ", ".join(evaluation.conan_holder.missing) in conan
    ratios = dict(re.findall(r'<tr data-ratio="(\w+)"><td>[^<]*</td><td class="num">(.*?)</td>',
                             page, re.S))  # fmt: skip
    assert ratios["current_ratio"] == "2"  # 400,000 / 200,000
    assert evaluation.ratios.values["current_ratio"] == Decimal(2)
    assert "missing: " in ratios["quick_ratio"] and "inventories" in ratios["quick_ratio"]
    assert ratios["working_capital"] == "200,000 EUR"


def _assess(url: str, classes: dict[str, str], day: dt.date) -> None:
    with unit_of_work(url) as conn:
        ids = dict(conn.execute(select(Customer.code, Customer.id)).all())
        conn.execute(RiskAssessment.__table__.insert(), [
            {"customer_id": ids[c], "as_of": day, "risk_class": cls, "review_date": day,
             "source": "assess"} for c, cls in classes.items()])  # fmt: skip


@pytest.fixture(scope="module")
def e_codes(own_url: str) -> list[str]:
    frame, _total = queries.customer_list(own_url, AS_OF, ADMIN, queries.Filters(),
                                          per_page=10_000)  # fmt: skip
    codes = sorted(set(frame.filter(frame["balance_minor"] > 0)["code"]))
    _assess(own_url, {codes[0]: "E", codes[1]: "E", codes[2]: "A"},
            AS_OF - dt.timedelta(days=5))  # fmt: skip
    return codes[:2]


def test_customer_list_page_filters_by_class(client: TestClient, e_codes: list[str]) -> None:
    r = client.get("/customers", params={**DAY, "class": "E"})
    assert r.status_code == 200
    listed = set(re.findall(r'href="/customers/([^"?]+)\?', r.text))
    assert listed == set(e_codes)
    assert re.search(r'<select name="class">.*?<option selected>E</option>', r.text, re.S)
    everyone = client.get("/customers", params={**DAY, "class": ""})
    assert everyone.status_code == 200
    assert len(set(re.findall(r'href="/customers/([^"?]+)\?', everyone.text))) > 2
    assert client.get("/customers", params={**DAY, "class": "F"}).status_code == 422
    # the HTMX partial of the filter form
    htmx = {"HX-Request": "true", "HX-Target": "customer-table"}
    partial = client.get("/customers", params={**DAY, "class": "E"}, headers=htmx)
    assert partial.status_code == 200 and "<html" not in partial.text


def test_api_customer_list_filters_by_class(client: TestClient, e_codes: list[str]) -> None:
    r = client.get("/api/v1/customers", params={**DAY, "class": "E"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2 and {i["code"] for i in body["items"]} == set(e_codes)
    assert client.get("/api/v1/customers", params={**DAY, "class": "B"}).json()["total"] == 0
    for bad in ("F", "e", "AB", "A' OR 1=1", ""):
        bad_r = client.get("/api/v1/customers", params={**DAY, "class": bad})
        assert bad_r.status_code == 422, bad
        assert bad_r.headers["content-type"].startswith("application/problem+json")
    spec = client.get("/openapi.json").json()
    params = spec["paths"]["/api/v1/customers"]["get"]["parameters"]
    assert any(p["name"] == "class" and p["in"] == "query" for p in params)


def test_forecast_tile_link_keeps_the_class(client: TestClient, e_codes: list[str]) -> None:
    page = client.get("/portfolio", params={**DAY, "class": "E", "country": "FR"})
    assert page.status_code == 200
    link = html.unescape(re.search(r'id="forecast-tile" hx-get="([^"]+)"', page.text).group(1))
    assert link.startswith("/portfolio/forecast?") and "class=E" in link
    assert "country=FR" in link
    tile = client.get(link, headers={"HX-Request": "true"})
    assert tile.status_code == 200
    assert client.get("/portfolio/forecast", params={**DAY, "class": "F"}).status_code == 422
