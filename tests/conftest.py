"""Shared fixtures. The whole suite runs on SQLite, and again on a real PostgreSQL server
when ENCOURS_TEST_DB_URL points at one (scripts/test.sh starts it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from encours.store.db import dispose_all

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).with_name("fixtures")
PG_ADMIN_URL = os.environ.get("ENCOURS_TEST_DB_URL", "")


def backend() -> str:
    return "postgresql" if PG_ADMIN_URL.startswith("postgresql") else "sqlite"


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test (SQLite file or PostgreSQL database)."""
    if backend() == "sqlite":
        yield f"sqlite:///{tmp_path / 'encours.db'}"
        dispose_all()
        return
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def ibm_sample() -> Path:
    """The IBM accounts-receivable sample: ../shared/data when the repository sits next to
    it, else the copy kept in tests/fixtures/ibm (same file), so that no test is skipped."""
    name = "ibm-accounts-receivable-2012-01_2013-06.csv"
    shared = SHARED_DATA / name
    return shared if shared.exists() else FIXTURES / "ibm" / name


@pytest.fixture(autouse=True)
def _english_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages in English unless a test asks for French; never the developer's locale."""
    monkeypatch.setenv("ENCOURS_LANG", "en")
    monkeypatch.delenv("ENCOURS_DB", raising=False)


# A configured company, as in production: `encours dunning send`, `outbox send` and
# `legal file` refuse to work without ENCOURS_COMPANY_NAME, ENCOURS_IBAN and
# ENCOURS_COMPANY_SIREN (encours.company.require_company). The values are those the
# documents showed by default, so that the tests of document contents keep their
# expectations; tests of the unconfigured case remove them (monkeypatch.delenv).
TEST_COMPANY = {
    "ENCOURS_COMPANY_NAME": "Votre Société SAS",
    "ENCOURS_IBAN": "FR7630006000011234567890189",
    "ENCOURS_COMPANY_SIREN": "123456782",
}


@pytest.fixture
def company_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_COMPANY.items():
        monkeypatch.setenv(name, value)
