"""The tests run with a configured company, as in production: `encours dunning send`,
`outbox send` and `legal file` refuse to work without ENCOURS_COMPANY_NAME, ENCOURS_IBAN and
ENCOURS_COMPANY_SIREN (encours.company.require_company). The values are those the documents
showed by default, so that the tests of document contents keep their expectations; tests of
the unconfigured case remove them (monkeypatch.delenv)."""

from __future__ import annotations

import pytest

TEST_COMPANY = {
    "ENCOURS_COMPANY_NAME": "Votre Société SAS",
    "ENCOURS_IBAN": "FR7630006000011234567890189",
    "ENCOURS_COMPANY_SIREN": "123456782",
}


@pytest.fixture(autouse=True)
def _company_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_COMPANY.items():
        monkeypatch.setenv(name, value)
