"""Collections pages and API: worklist by value at risk, customer actions (audited, with
the timeline), dunning run / approvals by role, order check; the role x route matrix of
these routes (403 for the roles that may not, collectors only on their own accounts)."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select, update

from conftest import AS_OF, SALES_OWNER, csrf_of, login
from encours.collections import policies
from encours.store.db import unit_of_work
from encours.store.outbox_schema import Communication
from encours.store.schema import Customer
from encours.web.accounts import create_user
from encours.web.roles import ROLES

DAY = AS_OF.isoformat()


def _csrf(client: TestClient) -> str:
    html = client.get("/customers").text
    return csrf_of(html.replace('meta name="csrf-token" content=', 'name="csrf_token" value='))


def _worklist(client: TestClient, collector: str = "*") -> list[dict]:
    r = client.get("/api/v1/worklist", params={"as_of": DAY, "collector": collector})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.fixture(scope="module")
def collector(app, clients, web_db_url) -> tuple[TestClient, str]:  # noqa: ANN001
    """A collector user named after the collector of the account with most value at risk."""
    top = _worklist(clients["admin"])[0]
    with unit_of_work(web_db_url) as conn:
        create_user(conn, "u_coll_pages", "collector", "correct horse battery", actor="test",
                    owner_name=top["collector"])  # fmt: skip
    client = login(TestClient(app, base_url="https://testserver"), "u_coll_pages")
    return client, top["collector"]


def test_worklist_is_ordered_by_value_at_risk_computed_from_the_open_invoices(clients) -> None:
    admin = clients["admin"]
    items = _worklist(admin)
    assert items
    values = [float(i["value_at_risk"]) for i in items]
    assert values == sorted(values, reverse=True)
    # independent check on the first account: no model -> p_late = 1 -> sum(open x days)
    first = items[0]
    invoices = admin.get("/api/v1/invoices", params={"open_as_of": DAY, "overdue": "true",
                                                     "customer": first["code"],
                                                     "per_page": 500}).json()["items"]  # fmt: skip
    expected = sum(float(i["open_amount"]) * i["days_overdue"] for i in invoices)
    assert float(first["value_at_risk"]) == pytest.approx(expected, abs=0.01)
    assert first["p_late"] == 1.0
    page = admin.get("/worklist", params={"as_of": DAY})
    assert page.status_code == 200 and "aucun modèle de paiement" in page.text  # French default
    assert first["name"] in page.text


def test_collectors_see_their_worklist_by_default_and_act_only_on_their_accounts(
    clients, collector
) -> None:  # fmt: skip
    client, name = collector
    mine = client.get("/api/v1/worklist", params={"as_of": DAY}).json()
    assert mine["collector"] == name and mine["items"]
    assert {i["collector"] for i in mine["items"]} == {name}
    other = next(i for i in _worklist(clients["admin"]) if i["collector"] != name)
    token = _csrf(client)
    r = client.post(f"/customers/{other['code']}/call",
                    data={"csrf_token": token, "outcome": "reached", "as_of": DAY},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    # but they may view any customer, and any collector's worklist
    assert client.get(f"/customers/{other['code']}/collections?as_of={DAY}").status_code == 200
    assert client.get("/worklist", params={"as_of": DAY, "collector": "*"}).status_code == 200


def test_promise_pauses_dunning_changes_worklist_and_timeline_and_is_audited(
    clients, collector
) -> None:  # fmt: skip
    client, name = collector
    plan = {m["customer"] for m in clients["admin"].get(
        "/api/v1/dunning/plan", params={"as_of": DAY}).json()["messages"]}  # fmt: skip
    items = client.get("/api/v1/worklist", params={"as_of": DAY}).json()["items"]
    target = next((i for i in items if i["code"] in plan), items[0])
    assert target["next_action"] != "promise"
    token = _csrf(client)
    r = client.post(f"/customers/{target['code']}/promise",
                    data={"csrf_token": token, "as_of": DAY, "promised_date": "2025-07-10",
                          "amount": "1234,50", "note": "by transfer"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    after = {i["code"]: i for i in client.get("/api/v1/worklist", params={"as_of": DAY}).json()
             ["items"]}  # fmt: skip
    assert after[target["code"]]["next_action"] == "promise"
    assert after[target["code"]]["next_detail"] == "2025-07-10"
    page = client.get(f"/customers/{target['code']}", params={"as_of": DAY}).text
    timeline = page.split('id="timeline"', 1)[1]
    assert "1234.50 EUR" in timeline and "2025-07-10" in timeline and "u_coll_pages" in timeline
    section = client.get(f"/customers/{target['code']}/collections", params={"as_of": DAY})
    promise = section.text.split('class="promise"', 1)[1].split("</p>", 1)[0]
    assert re.search(r"1\D234,50", promise) and "juil. 2025" in promise  # French by default
    plan_after = {m["customer"] for m in clients["admin"].get(
        "/api/v1/dunning/plan", params={"as_of": DAY}).json()["messages"]}  # fmt: skip
    assert target["code"] not in plan_after  # paused by the promise
    audit = clients["admin"].get("/api/v1/audit", params={"action": "dunning.promise"}).json()
    entry = audit["items"][0]
    assert entry["actor"] == "u_coll_pages" and entry["after"]["amount_minor"] == 123450
    promises = clients["admin"].get("/api/v1/promises", params={"customer": target["code"]})
    assert promises.json()["items"][0]["amount"] == "1234.50"


def test_one_click_call_from_the_worklist_answers_the_updated_list(collector) -> None:
    client, _name = collector
    items = client.get("/api/v1/worklist", params={"as_of": DAY}).json()["items"]
    code = items[-1]["code"]
    token = _csrf(client)
    r = client.post(f"/customers/{code}/call", data={"outcome": "no_answer", "as_of": DAY},
                    headers={"HX-Request": "true", "HX-Target": "worklist-body",
                             "X-CSRF-Token": token})  # fmt: skip
    assert r.status_code == 200 and 'id="worklist"' in r.text and "<html" not in r.text
    timeline = client.get(f"/customers/{code}", params={"as_of": DAY}).text
    assert "no_answer" in timeline.split('id="timeline"', 1)[1]


def test_dispute_hold_limit_request_and_statement(clients, collector, web_db_url) -> None:
    client, _name = collector
    code = client.get("/api/v1/worklist", params={"as_of": DAY}).json()["items"][0]["code"]
    token = _csrf(client)
    invoice = client.get("/api/v1/invoices", params={"open_as_of": DAY, "customer": code}
                         ).json()["items"][0]["number"]  # fmt: skip
    base = {"csrf_token": token, "as_of": DAY}
    r = client.post(f"/customers/{code}/dispute", data={**base, "invoice": invoice,
                    "reason": "goods damaged"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    disputes = clients["admin"].get("/api/v1/disputes", params={"customer": code}).json()["items"]
    assert disputes[0]["invoice"] == invoice and disputes[0]["resolved_on"] is None
    r = client.post(f"/customers/{code}/dispute", data={**base, "invoice": invoice,
                    "reason": "again"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 422  # already disputed
    r = client.post(f"/customers/{code}/hold", data={**base, "until": "2025-07-31",
                    "reason": "management change"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    r = client.post(f"/customers/{code}/limit-request", data={**base, "amount": "50000",
                    "reason": "growth"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    section = client.get(f"/customers/{code}/collections", params={"as_of": DAY}).text
    assert "management change" in section and "demande de limite en attente" in section
    pdf = client.get(f"/customers/{code}/statement.pdf", params={"as_of": DAY})
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert code in text
    r = client.post(f"/customers/{code}/statement", data=base, follow_redirects=False)
    assert r.status_code == 303
    with unit_of_work(web_db_url) as conn:
        queued = conn.execute(select(Communication.status, Communication.to_address).where(
            Communication.level_code == "statement")).all()  # fmt: skip
    assert queued and queued[0].status == "approved" and "@" in queued[0].to_address
    # read-only and sales may not act
    for role in ("read_only", "sales", "accountant"):
        r = clients[role].post(f"/customers/{code}/hold", data={**base, "csrf_token":
                               _csrf(clients[role]), "until": "2025-07-31", "reason": "x"},
                               follow_redirects=False)  # fmt: skip
        assert r.status_code == 403, role


def test_dunning_run_and_approval_by_the_role_the_level_requires(clients, web_db_url) -> None:
    admin = clients["admin"]
    # a sales-owned account on the gentle policy, whose final reminder needs sales approval
    with unit_of_work(web_db_url) as conn:
        codes = list(conn.execute(select(Customer.code).where(
            Customer.account_owner == SALES_OWNER)).scalars())  # fmt: skip
        for code in codes:
            policies.assign(conn, "customer", code, "gentle", "test")
    cm = clients["credit_manager"]
    later = (AS_OF + dt.timedelta(days=61)).isoformat()  # old enough for the final levels
    r = cm.post("/dunning/run", data={"csrf_token": _csrf(cm), "as_of": later},
                follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    drafts = admin.get("/api/v1/dunning/communications", params={"status": "draft",
                       "per_page": 500}).json()["items"]  # fmt: skip
    sales_drafts = [d for d in drafts if d["requires_approval_by"] == "sales"]
    assert sales_drafts, "the gentle final reminder should wait for sales"
    code = sales_drafts[0]["customer"]
    # a credit manager does not approve sales levels
    r = cm.post("/dunning/approve", data={"csrf_token": _csrf(cm), "role": "sales",
                "customer": code, "as_of": DAY}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    sales = clients["sales"]
    page = sales.get("/dunning", params={"as_of": later})
    assert page.status_code == 200 and code in page.text
    r = sales.post("/dunning/approve", data={"csrf_token": _csrf(sales), "role": "sales",
                   "customer": code, "as_of": DAY}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    after = admin.get("/api/v1/dunning/communications", params={"customer": code}).json()
    approved = [m for m in after["items"] if m["id"] == sales_drafts[0]["id"]]
    assert approved[0]["status"] == "approved"
    audit = admin.get("/api/v1/audit", params={"action": "dunning.approve"}).json()["items"]
    assert audit[0]["actor"] == "u_sales"
    assert audit[0]["after"]["approved_by"] == "sales:u_sales"
    # sales cannot approve credit-manager levels, nor see the whole portfolio's drafts
    r = sales.post("/dunning/approve", data={"csrf_token": _csrf(sales),
                   "role": "credit_manager", "as_of": DAY}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    visible = sales.get("/api/v1/dunning/communications", params={"per_page": 500}).json()
    assert {m["customer"] for m in visible["items"]} <= set(codes)
    runs = admin.get("/api/v1/dunning/runs").json()["items"]
    assert runs[0]["as_of"] == later and runs[0]["actor"] == "u_credit_manager"
    with unit_of_work(web_db_url) as conn:  # leave the other tests' policy as it was
        for code in codes:
            policies.assign(conn, "customer", code, None, "test")
        conn.execute(update(Communication).where(Communication.as_of == AS_OF + dt.timedelta(
            days=61)).values(status="cancelled"))  # fmt: skip


def test_order_check(clients, tokens, web_db_url) -> None:
    api = TestClient(clients["admin"].app, base_url="https://testserver")
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    code = _worklist(clients["admin"])[0]["code"]
    with unit_of_work(web_db_url) as conn:
        conn.execute(update(Customer).where(Customer.code == code)
                     .values(credit_limit_minor=100_000_00))  # fmt: skip
    r = api.post("/api/v1/order-check", json={"customer": code, "amount": "1000000",
                 "as_of": DAY}, headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "hold" and "over_limit" in body["codes"]
    assert body["limit"] == "100000.00" and body["reasons"]
    r = api.post("/api/v1/order-check", json={"customer": "NOPE", "amount": "1"},
                 headers=headers)  # fmt: skip
    assert r.status_code == 404
    r = api.post("/api/v1/order-check", json={"customer": code, "amount": "-1"}, headers=headers)
    assert r.status_code == 422
    # sales: own accounts only
    own = clients["sales"].get("/api/v1/customers").json()["items"]
    sales_headers = {"Authorization": f"Bearer {tokens['sales']}"}
    if code not in {i["code"] for i in own}:
        r = api.post("/api/v1/order-check", json={"customer": code, "amount": "1"},
                     headers=sales_headers)  # fmt: skip
        assert r.status_code == 404


# (method, path, roles allowed): POSTs are sent incomplete (422 when allowed, no change).
MATRIX = [
    ("GET", "/worklist", set(ROLES) - {"sales"}),
    ("GET", "/dunning", set(ROLES)),
    ("GET", "/customers/{own}/collections", set(ROLES)),
    ("POST", "/customers/{own}/call", {"admin", "credit_manager", "collector"}),
    ("POST", "/customers/{own}/promise", {"admin", "credit_manager", "collector"}),
    ("POST", "/customers/{own}/dispute", {"admin", "credit_manager", "collector"}),
    ("POST", "/customers/{own}/hold", {"admin", "credit_manager", "collector"}),
    ("POST", "/customers/{own}/statement", {"admin", "credit_manager", "collector"}),
    ("POST", "/customers/{own}/limit-request", {"admin", "credit_manager", "collector", "sales"}),
    ("POST", "/dunning/run", {"admin", "credit_manager"}),
    ("POST", "/dunning/send", {"admin", "credit_manager"}),
    ("POST", "/dunning/approve", {"admin", "credit_manager", "sales"}),
    ("GET", "/api/v1/worklist", set(ROLES) - {"sales"}),
    ("GET", "/api/v1/dunning/plan", set(ROLES)),
    ("GET", "/api/v1/dunning/runs", set(ROLES)),
    ("GET", "/api/v1/dunning/communications", set(ROLES)),
    ("POST", "/api/v1/dunning/runs", {"admin", "credit_manager"}),
    ("POST", "/api/v1/dunning/approvals", {"admin", "credit_manager", "sales"}),
    ("POST", "/api/v1/dunning/send", {"admin", "credit_manager"}),
    ("GET", "/api/v1/promises", set(ROLES)),
    ("POST", "/api/v1/promises", {"admin", "credit_manager", "collector"}),
    ("GET", "/api/v1/disputes", set(ROLES)),
    ("POST", "/api/v1/disputes", {"admin", "credit_manager", "collector"}),
    ("POST", "/api/v1/order-check", set(ROLES)),
]
# Sent with a body that is invalid for the allowed roles (nothing runs): bad JSON / forms.
_BAD_FORM = {"outcome": "nope", "amount": "x", "promised_date": "x", "until": "x",
             "invoice": "", "reason": "", "as_of": "not-a-day", "role": "nope"}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_use_only_its_collections_routes(app, clients, tokens, role) -> None:  # noqa: ANN001
    client = clients[role]
    token = _csrf(client)
    own = clients["admin"].get("/api/v1/customers", params={"owner": SALES_OWNER}).json()
    code = own["items"][0]["code"]
    for method, path, allowed in MATRIX:
        path = path.replace("{own}", code)
        if path.startswith("/api/"):
            kwargs = {"json": {"as_of": "x"}} if method == "POST" else {}
            r = client.request(method, path, headers={"X-CSRF-Token": token}, **kwargs)
            api = TestClient(app, base_url="https://testserver")
            t = api.request(method, path, headers={"Authorization": f"Bearer {tokens[role]}"},
                            **kwargs)  # fmt: skip
            assert (t.status_code == 403) == (role not in allowed), (role, "token", path)
        else:
            data = {"csrf_token": token, **_BAD_FORM} if method == "POST" else None
            r = client.request(method, path, data=data, params={"as_of": DAY},
                               follow_redirects=False)  # fmt: skip
        where = (role, method, path, r.status_code, r.text[:300])
        if role in allowed:
            assert r.status_code != 403 or (role == "collector" and "/customers/" in path), where
            assert r.status_code < 500, where
        else:
            assert r.status_code == 403, where
