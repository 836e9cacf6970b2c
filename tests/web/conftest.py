"""Web fixtures: one small generated portfolio per test session (SQLite file, or a
PostgreSQL database when ENCOURS_TEST_DB_URL is set), a user per role, logged-in clients."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from encours.generate import generate_portfolio
from encours.services.imports import import_file
from encours.store.db import dispose_all, unit_of_work
from encours.web.accounts import create_token, create_user
from encours.web.roles import ROLES

AS_OF = dt.date(2025, 6, 30)
PASSWORD = "correct horse battery"
SALES_OWNER = "Claire Dubois"
# a collector must have an owner name; this one collects no customer of the test ledger
COLLECTOR_OWNER = "Collector Without Accounts"
PG_ADMIN_URL = os.environ.get("ENCOURS_TEST_DB_URL", "")

os.environ.setdefault("ENCOURS_SECRET_KEY", "test-secret-key-not-for-production")


@pytest.fixture(scope="session")
def web_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from portfolio_database(tmp_path_factory.mktemp("web"), "tw")


def portfolio_database(tmp: Path, prefix: str) -> Iterator[str]:
    """The generated portfolio and users, in a fresh SQLite file or PostgreSQL database
    (dropped at the end) named `<prefix>_<random>`."""
    if not PG_ADMIN_URL.startswith("postgresql"):
        yield from _populated(f"sqlite:///{tmp / 'encours.db'}", tmp)
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield from _populated(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", tmp)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _populated(url: str, tmp: Path) -> Iterator[str]:
    out = tmp / "portfolio"
    generate_portfolio(out, customers=40, invoices=800, seed=11, end=AS_OF)
    for kind in ("customers", "invoices", "payments"):
        import_file(out / f"{kind}.csv", kind, db_url=url, actor="test")
    from encours.analytics.snapshots import take_monthly_snapshots

    with unit_of_work(url) as conn:
        take_monthly_snapshots(conn, dt.date(2024, 7, 1), AS_OF)
        for role in ROLES:
            owner = {"sales": SALES_OWNER, "collector": COLLECTOR_OWNER}.get(role)
            create_user(conn, f"u_{role}", role, PASSWORD, actor="test", owner_name=owner)
    try:
        yield url
    finally:
        dispose_all()


@pytest.fixture(scope="session")
def app(web_db_url: str):  # noqa: ANN201
    from encours.web.app import create_app

    return create_app(web_db_url)


@pytest.fixture(scope="session")
def tokens(web_db_url: str) -> dict[str, str]:
    with unit_of_work(web_db_url) as conn:
        return {
            role: create_token(conn, f"t_{role}", role, actor="test",
                               owner_name=SALES_OWNER if role == "sales" else None)
            for role in ROLES
        }  # fmt: skip


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture(scope="session")
def clients(app) -> Iterator[dict[str, TestClient]]:  # noqa: ANN001
    """A logged-in client per role (base_url https so that the Secure cookie flag is tested)."""
    made = {}
    for role in ROLES:
        client = TestClient(app, base_url="https://testserver")
        made[role] = login(client, f"u_{role}")
    yield made
    for client in made.values():
        client.close()


@pytest.fixture
def anon(app) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(app, base_url="https://testserver") as client:
        yield client
