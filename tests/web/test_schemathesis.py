"""Property-based API test: schemathesis against /openapi.json with a token. No 5xx, and
every response matches the documented schema (status codes, content types, bodies)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from encours.web.app import create_app


@pytest.fixture(scope="module")
def api_schema(web_db_url, tokens):  # noqa: ANN001, ANN201
    app = create_app(web_db_url)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    # GET routes only: POST /imports is exercised with real files in test_api/test_security.
    return schema.include(method="GET")


def test_api_matches_its_schema(api_schema, tokens) -> None:  # noqa: ANN001
    # schemathesis' pytest plugin does not run under pytest 9: drive hypothesis directly.
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case) -> None:  # noqa: ANN001
            case.call_and_validate(headers=headers)

        check()
