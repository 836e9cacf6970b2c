"""/api/v1 promises, disputes and dunning runs: paginated as the customers list (items,
total, page, per_page; newest first), sales limited to their own accounts; POST
/dunning/runs and /dunning/send answer typed bodies (documented in /openapi.json)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from own_db import Inbox, smtp_environment

from conftest import AS_OF, SALES_OWNER, portfolio_database
from encours.store.db import unit_of_work
from encours.web.accounts import create_token
from encours.web.app import create_app
from encours.web.roles import ROLES


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    """A client per role (bearer token) on a portfolio of its own."""
    for url in portfolio_database(tmp_path_factory.mktemp("paging"), "tp"):
        with unit_of_work(url) as conn:
            tokens = {role: create_token(conn, f"p_{role}", role, actor="test",
                                         owner_name=SALES_OWNER if role == "sales" else None)
                      for role in ROLES}  # fmt: skip
        app = create_app(url)
        clients = {}
        for role, token in tokens.items():
            client = TestClient(app, base_url="https://testserver")
            client.headers["Authorization"] = f"Bearer {token}"
            clients[role] = client
        yield clients
        for client in clients.values():
            client.close()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    yield from smtp_environment(tmp_path_factory.mktemp("letters"))


def _pages(client: TestClient, path: str, per_page: int, **params: object) -> list[dict]:
    first = client.get(path, params={**params, "per_page": per_page}).json()
    assert first["page"] == 1 and first["per_page"] == per_page
    items, page = list(first["items"]), 1
    while len(items) < first["total"]:
        page += 1
        body = client.get(path, params={**params, "per_page": per_page, "page": page}).json()
        assert body["total"] == first["total"] and len(body["items"]) <= per_page
        assert body["items"], (path, page)
        items += body["items"]
    after = client.get(path, params={**params, "per_page": per_page, "page": page + 1}).json()
    assert after["items"] == [] and after["total"] == first["total"]
    return items


def test_promises_and_disputes_are_paginated(api) -> None:  # noqa: ANN001
    admin = api["admin"]
    params = {"as_of": AS_OF.isoformat(), "per_page": 500}
    customers = admin.get("/api/v1/customers", params=params).json()["items"]
    own = [c["code"] for c in customers if c["account_owner"] == SALES_OWNER][:2]
    others = [c["code"] for c in customers if c["account_owner"] != SALES_OWNER][:3]
    assert len(own) == 2 and len(others) == 3
    day = AS_OF.isoformat()
    for n, code in enumerate(own + others):
        r = admin.post("/api/v1/promises", json={
            "customer": code, "promised_date": (AS_OF + dt.timedelta(days=10 + n)).isoformat(),
            "amount": "100.00", "as_of": day})  # fmt: skip
        assert r.status_code == 201, r.text
        invoice = admin.get("/api/v1/invoices", params={"open_as_of": day, "customer": code}
                            ).json()["items"][0]["number"]  # fmt: skip
        r = admin.post("/api/v1/disputes", json={"invoice": invoice, "reason": f"r{n}",
                                                 "as_of": day})  # fmt: skip
        assert r.status_code == 201, r.text
    promises = _pages(admin, "/api/v1/promises", 2)
    assert len(promises) == 5 and len({p["id"] for p in promises}) == 5
    assert [p["id"] for p in promises] == sorted((p["id"] for p in promises), reverse=True)
    disputes = _pages(admin, "/api/v1/disputes", 2, open_only=True)
    assert len(disputes) == 5 and len({d["id"] for d in disputes}) == 5
    # filters and the sales scope apply before the pagination
    assert admin.get("/api/v1/promises", params={"customer": others[0]}).json()["total"] == 1
    assert admin.get("/api/v1/promises", params={"status": "kept"}).json()["total"] == 0
    sales = api["sales"]
    mine = _pages(sales, "/api/v1/promises", 1)
    assert sorted(p["customer"] for p in mine) == sorted(own)
    assert {d["customer"] for d in _pages(sales, "/api/v1/disputes", 1)} == set(own)
    assert sales.get("/api/v1/disputes", params={"customer": others[0]}).json()["total"] == 0
    assert admin.get("/api/v1/promises", params={"per_page": 501}).status_code == 422
    assert admin.get("/api/v1/disputes", params={"page": 0}).status_code == 422


def test_dunning_runs_are_paginated_and_typed(api, inbox) -> None:  # noqa: ANN001
    manager = api["credit_manager"]
    days = [AS_OF + dt.timedelta(days=d) for d in (31, 40, 62)]
    for day in days:
        r = manager.post("/api/v1/dunning/runs", json={"as_of": day.isoformat()})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run_id"] and body["messages"] == sum(body["by_level"].values())
        assert isinstance(body["skipped"], dict) and isinstance(body["warnings"], list)
    runs = _pages(api["read_only"], "/api/v1/dunning/runs", 2)
    assert [r["as_of"] for r in runs] == [d.isoformat() for d in reversed(days)]
    assert all(r["actor"] for r in runs) and all(r["summary"] for r in runs)
    sent = manager.post("/api/v1/dunning/send", json={"as_of": days[-1].isoformat()})
    assert sent.status_code == 200, sent.text
    report = sent.json()
    assert set(report) == {"as_of", "emails_sent", "emails_retried_later", "emails_failed",
                           "resent_after_interruption", "held_by_another_sender", "letters",
                           "letter_batch", "calls", "notes", "failed", "retrying"}  # fmt: skip
    assert report["emails_sent"] == len(inbox.messages)
    assert report["failed"] == [] and report["as_of"] == days[-1].isoformat()
    schema = api["admin"].get("/openapi.json").json()
    ok = "200"
    for path, method, name in (("/api/v1/dunning/send", "post", "SendOut"),
                               ("/api/v1/dunning/runs", "post", "RunOut"),
                               ("/api/v1/dunning/runs", "get", "RunPage"),
                               ("/api/v1/promises", "get", "PromisePage"),
                               ("/api/v1/disputes", "get", "DisputePage")):  # fmt: skip
        ref = schema["paths"][path][method]["responses"][ok]["content"]["application/json"]
        assert ref["schema"]["$ref"].endswith("/" + name), (path, method)
    assert "failed" in schema["components"]["schemas"]["SendOut"]["required"]
