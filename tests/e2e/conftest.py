"""The integration and end-to-end tests run with a configured company (see
`company_configured` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _company_configured(company_configured: None) -> None:
    return company_configured
