"""Security: no route without login, each role's forbidden actions answer 403, CSRF on every
form, cookie flags, login rate limit, injection and oversize uploads refused cleanly."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from conftest import AS_OF, PASSWORD, SALES_OWNER, csrf_of, login
from encours.store.db import unit_of_work
from encours.web import queries
from encours.web.accounts import create_user
from encours.web.roles import PERMISSIONS, ROLES

PUBLIC = {"/login", "/health"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "1" if m.group(1).endswith("id") else "x", path)


def all_routes(routes: list, prefix: str = "") -> list[tuple[str, object]]:
    """(full path, route) of every route, through included routers (FastAPI keeps them
    as `_IncludedRouter` entries in `app.routes`)."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            extra = getattr(route.include_context, "prefix", "") or ""
            found += all_routes(inner.routes, prefix + extra)
        else:
            found.append((prefix + getattr(route, "path", ""), route))
    return found


def test_every_route_but_login_static_health_requires_authentication(app, anon) -> None:
    checked = 0
    for path, route in all_routes(app.routes):
        if isinstance(route, Mount):
            assert path == "/static"
            continue
        if path in PUBLIC:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            response = anon.request(method, _concrete(path), follow_redirects=False)
            checked += 1
            where = f"{method} {path}"
            if method == "GET":
                if path.startswith("/api/") or path == "/openapi.json":
                    assert response.status_code == 401, where
                    assert response.headers["content-type"] == "application/problem+json"
                else:
                    assert response.status_code == 303, where
                    assert response.headers["location"].startswith("/login?next="), where
            else:  # refused before anything runs: no CSRF token, no session
                assert response.status_code in (401, 403), where
    assert checked >= 20


def test_public_routes(anon) -> None:
    assert anon.get("/health").json() == {"status": "ok"}
    assert anon.get("/login").status_code == 200
    assert anon.get("/static/htmx.min.js").status_code == 200


def _first_code(client: TestClient, owner: str | None = None) -> str:
    rows = client.get("/api/v1/customers", params={"as_of": AS_OF.isoformat(), "per_page": 500})
    items = rows.json()["items"]
    return next(i["code"] for i in items if owner is None or i["account_owner"] == owner)


# (method, path, roles allowed: a set, or the name of a permission of roles.PERMISSIONS).
# Allowed POSTs are sent with incomplete forms (404/422, no change). Every route of the app
# must be in this matrix or in those of test_collections_pages / test_risk_pages (checked
# by test_every_route_is_in_a_role_matrix).
MATRIX: list[tuple[str, str, set[str] | str]] = [
    ("GET", "/", set(ROLES)),
    ("GET", "/portfolio", set(ROLES)),
    ("GET", "/customers", set(ROLES)),
    ("GET", "/customers/{own}", set(ROLES)),
    ("GET", "/customers/{own}/statement.pdf", set(ROLES)),
    ("POST", "/customers/{own}/dispute/resolve", {"admin", "credit_manager", "collector"}),
    ("POST", "/customers/{own}/insolvency", "customers.insolvency"),
    ("POST", "/customers/{own}/insolvency/end", "customers.insolvency"),
    ("GET", "/customers/{own}/statements", "statements.enter"),
    ("POST", "/customers/{own}/statements", "statements.enter"),
    ("POST", "/imports/nope/confirm", {"admin", "accountant"}),
    ("GET", "/docs", set(ROLES)),
    ("GET", "/openapi.json", set(ROLES)),
    ("GET", "/api/v1/me", set(ROLES)),
    ("GET", "/api/v1/customers/{own}", set(ROLES)),
    ("POST", "/api/v1/disputes/nope/resolve", {"admin", "credit_manager", "collector"}),
    ("GET", "/imports", {"admin", "accountant"}),
    ("POST", "/imports", {"admin", "accountant"}),
    ("GET", "/audit", {"admin"}),
    ("GET", "/admin/users", {"admin"}),
    ("POST", "/admin/users", {"admin"}),
    ("POST", "/admin/tokens", {"admin"}),
    ("POST", "/admin/users/1", {"admin"}),
    ("POST", "/admin/tokens/nope/revoke", {"admin"}),
    ("POST", "/customers/{own}/limit", {"admin", "credit_manager"}),
    ("GET", "/api/v1/customers", set(ROLES)),
    ("GET", "/api/v1/invoices", set(ROLES)),
    ("GET", "/api/v1/payments", set(ROLES)),
    ("GET", "/api/v1/status", set(ROLES) - {"sales"}),
    ("GET", "/api/v1/audit", {"admin"}),
    ("POST", "/api/v1/imports", {"admin", "accountant"}),
]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_and_does_only_what_it_should(clients, tokens, role: str) -> None:
    client = clients[role]
    csrf = csrf_of(client.get("/customers").text.replace('meta name="csrf-token" content=',
                                                          'name="csrf_token" value='))  # fmt: skip
    own = _first_code(clients["admin"], SALES_OWNER)
    for method, path, roles in MATRIX:
        allowed = set(PERMISSIONS[roles]) if isinstance(roles, str) else roles
        path = path.replace("{own}", own)
        if method == "POST" and path == "/admin/users/1":
            data = {"csrf_token": csrf, "role": "not-a-role"}
        else:  # invalid for every form: nothing runs
            data = {"csrf_token": csrf, "credit_limit": "not a number", "judgment_date": "x",
                    "end_date": "not a day", "kind": "x", "fiscal_year": "x"}  # fmt: skip
        response = client.request(method, path, data=data if method == "POST" else None,
                                  follow_redirects=False)  # fmt: skip
        if role in allowed:
            assert response.status_code != 403, (role, method, path)
            assert response.status_code < 500, (role, method, path, response.text[:500])
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)
        if path.startswith("/api/"):  # the same with the role's API token
            api = client.__class__(client.app, base_url="https://testserver")
            r = api.request(method, path, headers={"Authorization": f"Bearer {tokens[role]}"})
            assert (r.status_code == 403) == (role not in allowed), (role, "token", path)


def test_sales_sees_only_own_accounts(clients) -> None:
    sales = clients["sales"]
    items = sales.get("/api/v1/customers", params={"as_of": AS_OF.isoformat(),
                                                   "per_page": 500}).json()["items"]  # fmt: skip
    assert items and {i["account_owner"] for i in items} == {SALES_OWNER}
    other = _first_code(clients["admin"], owner="Thomas Girard")
    assert sales.get(f"/customers/{other}").status_code == 404
    assert sales.get(f"/api/v1/customers/{other}").status_code == 404
    own = items[0]["code"]
    assert sales.get(f"/customers/{own}", params={"as_of": AS_OF.isoformat()}).status_code == 200
    invoices = sales.get("/api/v1/invoices", params={"per_page": 500}).json()["items"]
    assert {i["customer_code"] for i in invoices} <= {i["code"] for i in items}


def test_forms_without_csrf_token_are_refused(clients, web_db_url) -> None:
    admin = clients["admin"]
    pending = {r["customer_code"] for r in admin.get("/api/v1/limit-requests").json()["items"]}
    rows = admin.get("/api/v1/customers", params={"as_of": AS_OF.isoformat(), "per_page": 500})
    code = next(i["code"] for i in rows.json()["items"] if i["code"] not in pending)
    before = admin.get(f"/api/v1/customers/{code}").json()["credit_limit"]
    for data in ({"credit_limit": "12345"}, {"credit_limit": "12345", "csrf_token": "forged"}):
        r = admin.post(f"/customers/{code}/limit", data=data, follow_redirects=False)
        assert r.status_code == 403
    assert admin.get(f"/api/v1/customers/{code}").json()["credit_limit"] == before
    requests = admin.get("/api/v1/limit-requests").json()["items"]
    assert code not in {r["customer_code"] for r in requests}
    # an HTMX-style header token works too; logout without a token is refused
    assert admin.post("/logout", follow_redirects=False).status_code == 403


def test_a_limit_change_from_the_customer_page_needs_four_eyes(clients) -> None:
    """POST /customers/{code}/limit creates a request (nothing changes); its author cannot
    decide it; another credit manager approves it on /limits: then the limit changes,
    audited with before and after."""
    admin, manager = clients["admin"], clients["credit_manager"]
    pending = {r["customer_code"] for r in admin.get("/api/v1/limit-requests").json()["items"]}
    rows = admin.get("/api/v1/customers", params={"as_of": AS_OF.isoformat(), "per_page": 500})
    code = [i["code"] for i in rows.json()["items"] if i["code"] not in pending][1]
    before = admin.get(f"/api/v1/customers/{code}").json()["credit_limit"]
    token = csrf_of(admin.get(f"/customers/{code}").text)
    r = admin.post(f"/customers/{code}/limit", data={"credit_limit": "12 345,50",
                   "csrf_token": token}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 200
    assert admin.get(f"/api/v1/customers/{code}").json()["credit_limit"] == before
    mine = [q for q in admin.get("/api/v1/limit-requests").json()["items"]
            if q["customer_code"] == code]  # fmt: skip
    assert len(mine) == 1 and mine[0]["requested"] == "12345.50"
    assert mine[0]["requested_by"] == "u_admin" and mine[0]["status"] == "pending"
    request_id = mine[0]["id"]
    notice = r.text.split('id="limits-notice">', 1)[1].split("</p>", 1)[0]
    assert f" {request_id} " in notice and "créée" in notice  # French by default
    assert f'id="request-{request_id}"' in r.text  # the pending list is shown below
    # a second one for the same customer is refused while the first is pending
    r = admin.post(f"/customers/{code}/limit", data={"credit_limit": "1",
                   "csrf_token": token}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 409 and 'id="limits-error"' in r.text
    for bad in ("", "-5", "abc"):
        r = admin.post(f"/customers/{code}/limit", data={"credit_limit": bad,
                       "csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 422, bad
    # four eyes: the author cannot approve (said in the page's language)
    r = admin.post(f"/limits/{request_id}/approve", data={"csrf_token": token},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 409 and "ne peut pas la valider" in r.text
    assert admin.get(f"/api/v1/customers/{code}").json()["credit_limit"] == before
    other = csrf_of(manager.get("/limits").text)
    r = manager.post(f"/limits/{request_id}/approve", data={"csrf_token": other},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert admin.get(f"/api/v1/customers/{code}").json()["credit_limit"] == "12345.50"
    audit = admin.get("/api/v1/audit", params={"entity": "customer", "key": code}).json()
    entry = audit["items"][0]
    assert entry["actor"] == "u_credit_manager"
    assert entry["after"]["credit_limit_minor"] == 1234550
    assert entry["after"]["limit_request"] == request_id
    # the cached portfolio follows the change (ledger version)
    r = admin.get("/api/v1/customers", params={"q": code, "as_of": AS_OF.isoformat()})
    assert r.json()["items"][0]["credit_limit"] == "12345.50"


def test_a_limit_can_be_removed_by_request(clients) -> None:
    """ "No limit" ticked on the customer page (or amount null in the API) is a request to
    remove the limit; approved by another credit manager, the customer has none."""
    admin, manager = clients["admin"], clients["credit_manager"]
    pending = {r["customer_code"] for r in admin.get("/api/v1/limit-requests").json()["items"]}
    rows = admin.get("/api/v1/customers", params={"as_of": AS_OF.isoformat(), "per_page": 500})
    codes = [i["code"] for i in rows.json()["items"] if i["code"] not in pending]
    code, other_code = codes[-1], codes[-2]
    page = admin.get(f"/customers/{code}").text
    assert 'name="no_limit"' in page
    r = admin.post(f"/customers/{code}/limit", data={"credit_limit": "", "no_limit": "1",
                   "csrf_token": csrf_of(page)}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 200
    mine = [q for q in admin.get("/api/v1/limit-requests").json()["items"]
            if q["customer_code"] == code]  # fmt: skip
    assert len(mine) == 1 and mine[0]["requested"] is None
    assert "aucune limite" in r.text.split(f'id="request-{mine[0]["id"]}"', 1)[1].split("</tr>")[0]
    r = admin.post("/api/v1/limit-requests", json={"customer": other_code, "amount": None},
                   headers={"X-CSRF-Token": csrf_of(page)})  # fmt: skip
    assert r.status_code in (200, 201) and r.json()["requested"] is None
    r = manager.post(f"/limits/{mine[0]['id']}/approve",
                     data={"csrf_token": csrf_of(manager.get("/limits").text)},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert admin.get(f"/api/v1/customers/{code}").json()["credit_limit"] is None


def test_login_form_needs_its_csrf_token(anon) -> None:
    r = anon.post("/login", data={"username": "u_admin", "password": PASSWORD},
                  follow_redirects=False)  # fmt: skip
    assert r.status_code == 403


def test_session_cookie_flags(app) -> None:
    with TestClient(app, base_url="https://testserver") as https:
        page = https.get("/login")
        r = https.post(
            "/login",
            data={
                "username": "u_read_only",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        cookie = r.headers["set-cookie"].lower()
        assert "encours_session=" in cookie and "httponly" in cookie
        assert "samesite=lax" in cookie and "secure" in cookie
    with TestClient(app, base_url="http://127.0.0.1") as http:
        page = http.get("/login")
        r = http.post(
            "/login",
            data={
                "username": "u_read_only",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        assert "secure" not in r.headers["set-cookie"].lower()  # the demo on plain loopback


def test_login_is_rate_limited(app, web_db_url) -> None:
    with unit_of_work(web_db_url) as conn:
        create_user(conn, "victim", "read_only", PASSWORD, actor="test")
    with TestClient(app, base_url="https://testserver") as client:
        token = csrf_of(client.get("/login").text)
        for _ in range(5):
            r = client.post("/login", data={"username": "victim", "password": "wrong-password",
                                            "csrf_token": token})  # fmt: skip
            assert r.status_code == 401
        r = client.post("/login", data={"username": "victim", "password": PASSWORD,
                                        "csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 429


def test_password_change_and_deactivation_end_sessions(app, clients, web_db_url) -> None:
    with unit_of_work(web_db_url) as conn:
        user_id = create_user(
            conn, "leaver", "collector", PASSWORD, actor="test", owner_name="Leaver"
        )
    client = login(TestClient(app, base_url="https://testserver"), "leaver")
    assert client.get("/portfolio").status_code == 200
    admin = clients["admin"]
    token = csrf_of(admin.get("/admin/users").text)
    r = admin.post(f"/admin/users/{user_id}", data={"csrf_token": token, "active": "0"},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    r = client.get("/portfolio", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    audit = admin.get("/api/v1/audit", params={"entity": "user", "key": "leaver"}).json()
    assert audit["items"][0]["before"]["active"] is True
    assert audit["items"][0]["after"]["active"] is False
    assert "password_hash" not in str(audit)


def test_revoked_token_is_refused(clients, web_db_url) -> None:
    admin = clients["admin"]
    csrf = csrf_of(admin.get("/admin/users").text)
    page = admin.post("/admin/tokens", data={"csrf_token": csrf, "name": "erp-x",
                                              "role": "read_only"})  # fmt: skip
    token = re.search(r"(enc_[A-Za-z0-9_-]+)", page.text).group(1)
    api = TestClient(admin.app, base_url="https://testserver")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/me", headers=headers).json()["role"] == "read_only"
    admin.post("/admin/tokens/erp-x/revoke", data={"csrf_token": csrf})
    r = api.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert api.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("evil", ["' OR 1=1 --", "x'; DROP TABLE customers; --", "%' OR '%'='"])
def test_sql_injection_in_filters_is_harmless(clients, evil: str) -> None:
    admin = clients["admin"]
    for path, params in (("/api/v1/customers", {"q": evil}), ("/api/v1/customers",
                         {"segment": evil}), ("/api/v1/invoices", {"customer": evil}),
                         ("/api/v1/payments", {"customer": evil}),
                         ("/api/v1/audit", {"key": evil, "actor": evil})):  # fmt: skip
        r = admin.get(path, params=params)
        assert r.status_code == 200 and r.json()["total"] == 0, (path, evil)
    assert admin.get(f"/customers/{evil}").status_code == 404
    assert admin.get("/api/v1/status").json()["customers"] >= 40


def test_sql_injection_in_an_imported_file_is_stored_as_text(clients, tmp_path) -> None:
    accountant = clients["accountant"]
    name = "Robert'); DROP TABLE customers; --"
    csv = f'customer_id,name,payment_terms\nINJ1,"{name}",30 days net\n'
    files = {"file": ("evil.csv", csv.encode(), "text/csv")}
    r = accountant.post("/api/v1/imports", data={"kind": "customers"}, files=files)
    assert r.status_code == 403  # a cookie session must send its CSRF token to the API too
    token = csrf_of(accountant.get("/imports").text)
    r = accountant.post("/api/v1/imports", data={"kind": "customers"}, files=files,
                        headers={"X-CSRF-Token": token})  # fmt: skip
    assert r.status_code == 200, r.text
    detail = clients["admin"].get("/api/v1/customers/INJ1").json()
    assert detail["name"] == name
    assert clients["admin"].get("/api/v1/status").json()["customers"] >= 41


def test_oversize_and_wrong_type_uploads_are_refused_cleanly(web_db_url) -> None:
    from encours.web.app import create_app

    small = create_app(web_db_url, max_upload_bytes=100_000)
    client = login(TestClient(small, base_url="https://testserver"), "u_accountant")
    big = b"customer_id,name\n" + b"X" * 200_000
    r = client.post("/api/v1/imports", data={"kind": "customers"},
                    files={"file": ("big.csv", big, "text/csv")})  # fmt: skip
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    # a body without Content-Length (chunked) is cut off too
    transport = httpx.ASGITransport(app=small)

    async def chunks():  # noqa: ANN202
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n"
        )
        for _ in range(30):
            yield b"y" * 10_000

    import asyncio

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as ac:
            return await ac.post("/api/v1/imports", content=chunks(),
                                 headers={"content-type": "multipart/form-data; boundary=b",
                                          "cookie": "; ".join(f"{k}={v}" for k, v in
                                                              client.cookies.items())})  # fmt: skip

    assert asyncio.run(send()).status_code == 413
    page = client.get("/imports")
    r = client.post(
        "/imports",
        data={"kind": "customers", "csrf_token": csrf_of(page.text)},
        files={"file": ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)},
    )
    assert r.status_code == 422 and "fichiers acceptés" in r.text  # French by default
    r = client.post("/imports", data={"kind": "customers", "csrf_token": csrf_of(page.text)},
                    files={"file": ("fake.xlsx", b"not a zip")})  # fmt: skip
    assert r.status_code == 422
    assert queries is not None


# --- every route is classified ---------------------------------------------------------------

# Routes outside the role matrices, each with its reason.
UNCLASSIFIED_BY_DESIGN = {
    ("GET", "/login"): "public (test_public_routes)",
    ("POST", "/login"): "public (test_login_form_needs_its_csrf_token, rate limit tests)",
    ("GET", "/health"): "public (test_public_routes)",
    ("POST", "/logout"): "every role (test_every_role_may_log_out)",
}


def _matrices() -> list[tuple[str, str, str]]:
    """(matrix, method, path) of every role matrix of the web tests."""
    import test_collections_pages
    import test_risk_pages

    matrices = {"test_security": MATRIX, "test_collections_pages": test_collections_pages.MATRIX,
                "test_risk_pages": test_risk_pages.MATRIX}  # fmt: skip
    return [(name, method, path) for name, matrix in matrices.items()
            for method, path, _roles in matrix]  # fmt: skip


def unclassified_routes(app_routes: list) -> list[str]:
    """'METHOD /path' of the routes in no role matrix (and not public by design)."""
    entries = [(method, path.replace("{own}", "OWN")) for _m, method, path in _matrices()]
    missing = []
    for path, route in all_routes(app_routes):
        if isinstance(route, Mount):
            continue
        parts = re.split(r"\{[^}]+\}", path)
        pattern = re.compile("^" + "[^/]+".join(map(re.escape, parts)) + "$")
        for method in sorted(route.methods - {"HEAD"}):
            if (method, path) in UNCLASSIFIED_BY_DESIGN:
                continue
            if not any(m == method and pattern.match(p) for m, p in entries):
                missing.append(f"{method} {path}")
    return missing


def test_every_route_is_in_a_role_matrix(app) -> None:
    """A new route must be given its roles in a matrix (MATRIX here, or those of
    test_collections_pages / test_risk_pages), so that it is tested role by role."""
    missing = unclassified_routes(app.routes)
    assert not missing, (
        f"{len(missing)} route(s) in no role matrix: add them to MATRIX in "
        "tests/web/test_security.py (or the collections / risk matrix) with the roles "
        "allowed:\n  " + "\n  ".join(missing)
    )


def test_the_route_classification_sees_a_new_route(app) -> None:
    from fastapi import APIRouter

    extra = APIRouter()

    @extra.get("/brand-new/{thing}")
    def brand_new(thing: str) -> dict:  # pragma: no cover - never called
        return {}

    assert unclassified_routes([*app.routes, *extra.routes]) == ["GET /brand-new/{thing}"]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_log_out(app, role: str) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        login(client, f"u_{role}")
        token = csrf_of(client.get("/customers").text.replace(
            'meta name="csrf-token" content=', 'name="csrf_token" value='))  # fmt: skip
        r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        r = client.get("/portfolio", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
