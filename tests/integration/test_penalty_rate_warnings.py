"""Unconfirmed ECB rates and missing legal rates behind penalty periods are warnings
(`encours penalties compute`: stderr and the `warnings` of --json)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from encours.domain.penalties import RateTable
from encours.store.rates import (
    missing_legal_rate_warning,
    penalty_rate_warnings,
    shipped_rates,
)

D = dt.date
SHIPPED = RateTable((r.kind, r.valid_from, r.rate) for r in shipped_rates())
runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_ecb_warning_per_unconfirmed_half_year() -> None:
    # Shipped ECB table: last change 2025-06-11. 2025 H1 is settled; 2025 H2 and 2026 H1 not.
    days = [D(2025, 5, 1), D(2025, 7, 1), D(2025, 12, 31), D(2026, 1, 1)]
    warnings = penalty_rate_warnings(SHIPPED, days, contractual=False)
    assert len(warnings) == 2
    assert "2025 H2" in warnings[0] and "2025-07-01" in warnings[0]
    assert "2026 H1" in warnings[1] and "encours rates set ecb 2026-01-01 RATE" in warnings[1]
    # Confirming 2026 H1 settles both half-years.
    confirmed = RateTable([*((e.kind, e.valid_from, e.rate) for e in SHIPPED.entries()),
                           ("ecb", D(2026, 1, 1), Decimal("2.15"))])  # fmt: skip
    assert penalty_rate_warnings(confirmed, days, contractual=False) == []


def test_legal_warning_names_the_rate_used_for_the_floor() -> None:
    # Legal rates are shipped up to 2025 H2 (2.76): 2026 H1 uses it, and says so.
    assert missing_legal_rate_warning(SHIPPED, D(2025, 9, 1)) is None
    warning = missing_legal_rate_warning(SHIPPED, D(2026, 3, 1))
    assert warning is not None
    assert "2026 H1" in warning and "(2.76 %, in force since 2025-07-01)" in warning
    assert "encours rates set legal 2026-01-01 RATE" in warning
    # Contractual rate: the legal rates are checked, not the ECB one.
    warnings = penalty_rate_warnings(SHIPPED, [D(2025, 8, 1), D(2026, 2, 1)], contractual=True)
    assert len(warnings) == 1 and "legal" in warnings[0]


@pytest.fixture
def cli(db_url: str):  # noqa: ANN201
    from encours.cli.app import app

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(app, ["--db", db_url, *args], env={"COLUMNS": "200"})

    return invoke


def test_compute_warns_on_stderr_and_in_json(cli) -> None:  # noqa: ANN001
    args = ["penalties", "compute", "--amount", "1000.00", "--due", "2025-06-15",
            "--as-of", "2026-02-15"]  # fmt: skip
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # Periods in 2025 H1 (settled by the 2025-06-11 change), 2025 H2 and 2026 H1 (not).
    assert [p["rate"] for p in payload["periods"]] == ["13.15", "12.15", "12.15"]
    assert len(payload["warnings"]) == 2
    assert "2025 H2" in payload["warnings"][0] and "2026 H1" in payload["warnings"][1]
    assert "has not been confirmed" in _flat(result.stderr)

    result = cli(*args, "--rate", "5")
    assert result.exit_code == 0, result.output
    assert "3x legal-rate floor uses the latest known rate" in _flat(result.stderr)
    assert "2026 H1" in _flat(result.stderr)

    # A confirmed table: no warning, no `warnings` key.
    assert cli("rates", "set", "ecb", "2026-01-01", "2.15").exit_code == 0
    result = cli(*args, "--json")
    assert result.exit_code == 0 and "warnings" not in json.loads(result.stdout)
    assert "Warning" not in result.stderr
