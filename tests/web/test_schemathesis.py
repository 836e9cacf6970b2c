"""Property-based API test: schemathesis against /openapi.json with a token. No 5xx, and
every response matches the documented schema (status codes, content types, bodies).

GET operations run on the session's portfolio; POST operations (which change data: dunning
runs, approvals, sending, promises, disputes, limit requests, onboarding, imports, the order
check) run on a portfolio of their own, with a real SMTP server on loopback for the sending."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from own_db import Inbox, smtp_environment
from schemathesis.checks import positive_data_acceptance

from conftest import portfolio_database
from encours.store.db import unit_of_work
from encours.web.accounts import create_token
from encours.web.app import create_app


def _run(schema, token: str, max_examples: int, excluded: list | None = None) -> int:  # noqa: ANN001
    # schemathesis' pytest plugin does not run under pytest 9: drive hypothesis directly.
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case) -> None:  # noqa: ANN001
            case.call_and_validate(headers=headers, excluded_checks=excluded)

        check()
    return len(operations)


@pytest.fixture(scope="module")
def api_schema(web_db_url, tokens):  # noqa: ANN001, ANN201
    app = create_app(web_db_url)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    return schema.include(method="GET")


def test_api_matches_its_schema(api_schema, tokens) -> None:  # noqa: ANN001
    assert _run(api_schema, tokens["admin"], 8) >= 7


# --- POST operations, on a database of their own ---------------------------------------------


@pytest.fixture(scope="module")
def post_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from portfolio_database(tmp_path_factory.mktemp("schemathesis"), "ts")


@pytest.fixture(scope="module")
def smtp_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    yield from smtp_environment(tmp_path_factory.mktemp("letters"))


def test_api_post_operations_match_their_schema(post_db_url, smtp_env) -> None:  # noqa: ANN001
    with unit_of_work(post_db_url) as conn:
        token = create_token(conn, "t_schemathesis", "admin", actor="test")
    app = create_app(post_db_url)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": f"Bearer {token}"}
    ).include(method="POST", path_regex="^/api/v1/")
    # Business rules refuse some schema-valid bodies (an unknown invoice, a file whose
    # content is not a ledger, a promised day in the past): 404/409/422 problems, documented
    # in each operation's responses; everything else is checked (no 5xx, schema, headers).
    assert _run(schema, token, 6, [positive_data_acceptance]) >= 10
