"""The JSON API: pagination, filters, status keys, imports, problem+json errors, OpenAPI."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from conftest import AS_OF, csrf_of
from encours.services.reports import status as status_report
from encours.web.api.schemas import Status


def _api(client: TestClient, token: str) -> TestClient:
    api = TestClient(client.app, base_url="https://testserver")
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def test_customers_pagination_filters_and_detail(clients, tokens) -> None:
    api = _api(clients["admin"], tokens["read_only"])
    day = AS_OF.isoformat()
    first = api.get("/api/v1/customers", params={"as_of": day, "per_page": 7}).json()
    assert first["total"] == 40 and len(first["items"]) == 7
    pages = [api.get("/api/v1/customers", params={"as_of": day, "per_page": 7, "page": p})
             .json()["items"] for p in range(1, 7)]  # fmt: skip
    codes = [c["code"] for page in pages for c in page]
    assert len(codes) == len(set(codes)) == 40
    balances = [Decimal(c["balance"]) for page in pages for c in page]
    assert balances == sorted(balances, reverse=True)
    status = api.get("/api/v1/status", params={"as_of": day}).json()
    assert sum(balances) == Decimal(status["outstanding"])
    segment = first["items"][0]["segment"]
    seg = api.get("/api/v1/customers", params={"as_of": day, "segment": segment}).json()
    assert seg["total"] >= 1 and {c["segment"] for c in seg["items"]} == {segment}
    over = api.get("/api/v1/customers", params={"as_of": day, "over_limit": True}).json()
    assert all(c["over_limit"] for c in over["items"])
    detail = api.get(f"/api/v1/customers/{codes[0]}", params={"as_of": day}).json()
    assert detail["positions"][0]["balance"] == first["items"][0]["balance"]


def test_status_has_the_keys_of_the_cli(clients, tokens, web_db_url) -> None:
    api = _api(clients["admin"], tokens["credit_manager"])
    body = api.get("/api/v1/status", params={"as_of": AS_OF.isoformat()}).json()
    expected = status_report(AS_OF, web_db_url)
    assert set(body) == set(expected) == set(Status.model_fields)
    assert body["outstanding"] == expected["outstanding"]


def test_invoices_open_and_overdue(clients, tokens) -> None:
    api = _api(clients["admin"], tokens["collector"])
    day = AS_OF.isoformat()
    everything = api.get("/api/v1/invoices", params={"per_page": 5}).json()
    opened = api.get("/api/v1/invoices", params={"open_as_of": day, "per_page": 500}).json()
    overdue = api.get("/api/v1/invoices", params={"open_as_of": day, "overdue": True,
                                                  "per_page": 500}).json()  # fmt: skip
    assert everything["total"] > opened["total"] >= overdue["total"] > 0
    assert all(i["days_overdue"] > 0 for i in overdue["items"])
    status = api.get("/api/v1/status", params={"as_of": day}).json()
    assert opened["total"] == status["open_invoices"]
    code = overdue["items"][0]["customer_code"]
    mine = api.get("/api/v1/invoices", params={"customer": code, "per_page": 500}).json()
    assert {i["customer_code"] for i in mine["items"]} == {code}
    payments = api.get("/api/v1/payments", params={"customer": code, "date_to": day}).json()
    assert all(p["customer_code"] == code for p in payments["items"])


def test_errors_are_problem_json(clients, tokens) -> None:
    api = _api(clients["admin"], tokens["admin"])
    for path, status in (("/api/v1/customers/NOPE", 404), ("/api/v1/customers?page=0", 422),
                         ("/api/v1/customers?as_of=1066-10-14", 422)):  # fmt: skip
        r = api.get(path)
        assert r.status_code == status
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == status and r.json()["title"]


def test_import_through_the_api_reports_bad_rows(clients, tokens) -> None:
    api = _api(clients["admin"], tokens["accountant"])
    good = "customer_id,name,payment_terms\nAPI1,Alpha SARL,30 days net\n"
    r = api.post("/api/v1/imports", data={"kind": "customers"},
                 files={"file": ("c.csv", good.encode(), "text/csv")})  # fmt: skip
    assert r.status_code == 200 and r.json()["inserted"] == 1
    bad = (
        "invoice_number,customer_id,issue_date,due_date,amount,currency\n"
        "API-1,API1,2025-05-01,2025-05-31,100.00,EUR\nAPI-2,API1,not a date,2025-05-31,1,EUR\n"
    )
    r = api.post("/api/v1/imports", data={"kind": "invoices"},
                 files={"file": ("i.csv", bad.encode(), "text/csv")})  # fmt: skip
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["line"] == 3
    assert api.get("/api/v1/invoices", params={"customer": "API1"}).json()["total"] == 0


def test_pages_in_french_by_default_and_english_on_request(clients) -> None:
    client = TestClient(clients["admin"].app, base_url="https://testserver")
    assert "Mot de passe" in client.get("/login").text
    english = client.get("/login?lang=en")
    assert "Password" in english.text and "encours_lang=en" in english.headers["set-cookie"]
    assert "Password" in client.get("/login").text  # remembered in the cookie
    page = clients["admin"].get("/portfolio", params={"as_of": AS_OF.isoformat(), "lang": "fr"})
    assert "Encours total" in page.text and "\xa0€" in page.text  # Babel: 1\u202f234,56\xa0€
    assert "<svg" in page.text and csrf_of(page.text)


def test_htmx_partial_and_openapi(clients) -> None:
    admin = clients["admin"]
    partial = admin.get(
        "/portfolio",
        params={"as_of": AS_OF.isoformat()},
        headers={"HX-Request": "true", "HX-Target": "portfolio-body"},
    )
    assert partial.status_code == 200 and "<html" not in partial.text and "<svg" in partial.text
    spec = admin.get("/openapi.json").json()
    assert {"/api/v1/customers", "/api/v1/invoices", "/api/v1/payments", "/api/v1/status",
            "/api/v1/imports", "/api/v1/audit"} <= set(spec["paths"])  # fmt: skip
    assert "/portfolio" not in spec["paths"]
    docs = admin.get("/docs")
    assert "/static/swagger-ui/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text


def test_demo_user_is_idempotent_and_can_log_in(app, web_db_url, monkeypatch) -> None:
    from conftest import login
    from encours.web import ensure_demo_user

    monkeypatch.delenv("ENCOURS_DEMO_PASSWORD", raising=False)
    first = ensure_demo_user(web_db_url)
    user, password = ensure_demo_user(web_db_url)  # again: same user, a new known password
    assert user == first[0] == "demo" and password != first[1]
    client = login(TestClient(app, base_url="https://testserver"), user, password)
    assert client.get("/api/v1/me").json()["role"] == "admin"
    monkeypatch.setenv("ENCOURS_DEMO_PASSWORD", "from-the-environment")
    assert ensure_demo_user(web_db_url) == ("demo", "from-the-environment")
