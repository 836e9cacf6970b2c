"""`encours serve --api-only` answers an unauthenticated request with a 401 problem+json
(it serves no /login page to redirect to), and collector or sales users are never created
without the owner name that scopes their accounts (CLI, admin page, `create_user`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import PASSWORD, csrf_of
from encours.store.db import unit_of_work
from encours.store.web_schema import User
from encours.web.accounts import OwnerRequired, create_user, update_user
from encours.web.deps import PrincipalDep

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _with_probe(app: FastAPI) -> FastAPI:
    """A route outside /api/ that needs a principal (as a page would)."""

    @app.get("/probe-needs-login")
    def probe(principal: PrincipalDep) -> dict[str, str]:
        return {"name": principal.name}

    return app


@pytest.fixture(scope="module")
def api_only(web_db_url: str) -> Iterator[TestClient]:
    from encours.web.app import create_app

    app = _with_probe(create_app(web_db_url, api_only=True))
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def _assert_problem_401(r) -> None:  # noqa: ANN001
    assert r.status_code == 401, (r.status_code, r.headers.get("location"))
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"


def test_api_only_unauthenticated_browser_gets_401_problem(api_only: TestClient) -> None:
    for path in ("/probe-needs-login", "/api/v1/customers", "/openapi.json"):
        _assert_problem_401(api_only.get(path, headers=BROWSER, follow_redirects=False))
    # an HTMX request and a stale session cookie: still 401, never a redirect to /login
    _assert_problem_401(api_only.get("/probe-needs-login", follow_redirects=False,
                                     headers={**BROWSER, "HX-Request": "true"}))  # fmt: skip
    api_only.cookies.set("encours_session", "not-a-valid-session", domain="testserver")
    try:
        _assert_problem_401(api_only.get("/probe-needs-login", headers=BROWSER,
                                         follow_redirects=False))  # fmt: skip
    finally:
        api_only.cookies.clear()
    _assert_problem_401(api_only.get("/probe-needs-login", follow_redirects=False,
                                     headers={"authorization": "Bearer nope"}))  # fmt: skip


def test_api_only_token_still_works(api_only: TestClient, tokens) -> None:  # noqa: ANN001
    auth = {"authorization": f"Bearer {tokens['read_only']}"}
    assert api_only.get("/probe-needs-login", headers=auth).json() == {"name": "t_read_only"}
    assert api_only.get("/api/v1/me", headers=auth).status_code == 200


def test_full_app_still_redirects_browsers_to_login(web_db_url: str) -> None:
    from encours.web.app import create_app

    app = _with_probe(create_app(web_db_url))
    with TestClient(app, base_url="https://testserver") as c:
        r = c.get("/probe-needs-login", headers=BROWSER, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _users(url: str, name: str) -> list:
    with unit_of_work(url) as conn:
        return conn.execute(select(User.username, User.owner_name)
                            .where(User.username == name)).all()  # fmt: skip


@pytest.mark.parametrize("role", ["collector", "sales"])
def test_cli_refuses_collector_or_sales_without_owner(web_db_url: str, role: str) -> None:
    from encours.cli.app import app as cli

    runner = CliRunner()
    args = ["--db", web_db_url, "users", "add", f"cli_{role}_x", "--role", role,
            "--password-stdin"]  # fmt: skip
    env = {"COLUMNS": "200", "ENCOURS_LANG": "en"}
    for extra in ([], ["--owner", "  "]):
        r = runner.invoke(cli, [*args, *extra], input=PASSWORD + "\n", env=env)
        assert r.exit_code == 1, r.output
        assert "--owner NAME" in r.output and role in r.output
        assert _users(web_db_url, f"cli_{role}_x") == []
    r = runner.invoke(cli, [*args, "--owner", "Claire Dubois"], input=PASSWORD + "\n", env=env)
    assert r.exit_code == 0, r.output
    assert _users(web_db_url, f"cli_{role}_x") == [(f"cli_{role}_x", "Claire Dubois")]


def test_other_roles_need_no_owner(web_db_url: str) -> None:
    from encours.cli.app import app as cli

    r = CliRunner().invoke(cli, ["--db", web_db_url, "users", "add", "cli_reader_x", "--role",
                                 "read_only", "--password-stdin"], input=PASSWORD + "\n",
                           env={"ENCOURS_LANG": "en"})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert _users(web_db_url, "cli_reader_x") == [("cli_reader_x", None)]


def test_create_user_and_admin_page_apply_the_rule(clients, web_db_url: str) -> None:  # noqa: ANN001
    with unit_of_work(web_db_url) as conn, pytest.raises(OwnerRequired):
        create_user(conn, "fn_collector_x", "collector", PASSWORD, actor="test")
    assert _users(web_db_url, "fn_collector_x") == []
    admin = clients["admin"]
    token = csrf_of(admin.get("/admin/users").text)
    form = {"csrf_token": token, "username": "form_sales_x", "role": "sales",
            "password": PASSWORD}  # fmt: skip
    r = admin.post("/admin/users", data=form, follow_redirects=False)
    assert r.status_code == 422 and "nom de titulaire" in r.text  # French by default
    assert _users(web_db_url, "form_sales_x") == []
    r = admin.post("/admin/users", data={**form, "owner_name": "Claire Dubois"},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert _users(web_db_url, "form_sales_x") == [("form_sales_x", "Claire Dubois")]


def test_a_role_change_keeps_an_owner_for_collectors_and_sales(clients, web_db_url: str) -> None:  # noqa: ANN001
    """update_user (admin page, CLI) cannot leave a collector or sales user without the
    owner whose accounts they work on, whether by a new role or an emptied owner."""
    with unit_of_work(web_db_url) as conn:
        reader = create_user(conn, "upd_reader_x", "read_only", PASSWORD, actor="test")
        seller = create_user(conn, "upd_sales_x", "sales", PASSWORD, actor="test",
                             owner_name="Claire Dubois")  # fmt: skip
    for user_id, change in ((reader, {"role": "collector"}), (seller, {"owner_name": " "})):
        with unit_of_work(web_db_url) as conn, pytest.raises(OwnerRequired):
            update_user(conn, user_id, actor="test", **change)
    assert _users(web_db_url, "upd_reader_x") == [("upd_reader_x", None)]
    assert _users(web_db_url, "upd_sales_x") == [("upd_sales_x", "Claire Dubois")]
    admin = clients["admin"]
    token = csrf_of(admin.get("/admin/users").text)
    r = admin.post(f"/admin/users/{reader}", data={"csrf_token": token, "role": "sales"},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 422 and "le rôle sales demande un nom de titulaire" in r.text
    r = admin.post(f"/admin/users/{reader}", data={"csrf_token": token, "role": "sales",
                   "owner_name": "Claire Dubois"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert _users(web_db_url, "upd_reader_x") == [("upd_reader_x", "Claire Dubois")]
