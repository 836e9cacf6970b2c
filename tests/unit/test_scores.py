"""Altman Z'' and Conan-Holder against hand-computed cases; ratios; partial results."""

from __future__ import annotations

from decimal import Decimal

import pytest

from encours.domain.ratios import compute_ratios
from encours.domain.scores import altman_z2, altman_zone, conan_holder, conan_holder_zone

D = Decimal

# The worked example of shared/reference/failure-scores.md
WORKED = {
    "total_assets": D(1000), "current_assets": D(500), "current_liabilities": D(300),
    "retained_earnings": D(150), "ebit": D(80), "equity": D(400), "total_liabilities": D(600),
}  # fmt: skip


def test_altman_worked_example() -> None:
    result = altman_z2(WORKED)
    assert result.ratios["x1"] == D("0.2")
    assert result.ratios["x2"] == D("0.15")
    assert result.ratios["x3"] == D("0.08")
    assert round(result.ratios["x4"], 4) == D("0.6667")
    # 6.56 x 0.2 + 3.26 x 0.15 + 6.72 x 0.08 + 1.05 x 400/600 = 1.312 + 0.489 + 0.5376 + 0.7
    assert result.rounded() == D("3.0386")
    assert result.zone == "safe"
    assert result.missing == ()


def test_altman_uses_a_given_working_capital() -> None:
    amounts = {**WORKED, "current_assets": None, "current_liabilities": None,
               "working_capital": D(200)}  # fmt: skip
    assert altman_z2(amounts).rounded() == D("3.0386")


def test_conan_holder_hand_computed() -> None:
    amounts = {
        "ebe": D(120), "total_liabilities": D(600), "equity": D(400), "long_term_debt": D(200),
        "total_assets": D(1000), "current_assets": D(500), "inventories": D(100),
        "financial_expenses": D(20), "revenue": D(2000), "personnel_expenses": D(300),
        "value_added": D(600),
    }  # fmt: skip
    result = conan_holder(amounts)
    # R1 = 120/600 = 0.2, R2 = (400+200)/1000 = 0.6, R3 = (500-100)/1000 = 0.4,
    # R4 = 20/2000 = 0.01, R5 = 300/600 = 0.5
    # Z = 0.24x0.2 + 0.22x0.6 + 0.16x0.4 - 0.87x0.01 - 0.10x0.5
    #   = 0.048 + 0.132 + 0.064 - 0.0087 - 0.05 = 0.1853 -> sound (> 0.16)
    assert result.ratios == {"r1": D("0.2"), "r2": D("0.6"), "r3": D("0.4"), "r4": D("0.01"),
                             "r5": D("0.5")}  # fmt: skip
    assert result.score == D("0.1853")
    assert result.zone == "sound"


def test_conan_holder_danger_case() -> None:
    # R1 = 10/900, R2 = 150/1000, R3 = 300/1000, R4 = 60/1500, R5 = 450/500
    # Z = 0.24x0.011111 + 0.22x0.15 + 0.16x0.3 - 0.87x0.04 - 0.10x0.9
    #   = 0.0026667 + 0.033 + 0.048 - 0.0348 - 0.09 = -0.0411333 -> danger (< 0.04)
    amounts = {
        "ebe": D(10), "total_liabilities": D(900), "equity": D(100), "long_term_debt": D(50),
        "total_assets": D(1000), "current_assets": D(400), "inventories": D(100),
        "financial_expenses": D(60), "revenue": D(1500), "personnel_expenses": D(450),
        "value_added": D(500),
    }  # fmt: skip
    result = conan_holder(amounts)
    assert result.rounded() == D("-0.0411")
    assert result.zone == "danger"


def test_missing_inputs_give_a_partial_result_naming_them() -> None:
    amounts = {**WORKED, "retained_earnings": None, "equity": None}
    result = altman_z2(amounts)
    assert result.score is None and result.zone is None and not result.complete
    assert set(result.missing) == {"retained_earnings", "equity"}
    assert result.ratios["x1"] == D("0.2")  # what can be computed still is
    assert result.ratios["x2"] is None

    empty = conan_holder({})
    assert empty.score is None
    assert {"ebe", "total_liabilities", "revenue", "value_added", "inventories"} <= set(
        empty.missing
    )


def test_zero_denominator_is_named_not_a_crash() -> None:
    result = altman_z2({**WORKED, "total_assets": D(0)})
    assert result.score is None
    assert "total_assets (zero)" in result.missing


def test_working_capital_inputs_named_when_missing() -> None:
    result = altman_z2({**WORKED, "current_liabilities": None})
    assert "current_liabilities" in result.missing
    assert result.ratios["x1"] is None


@pytest.mark.parametrize(
    ("score", "zone"),
    [("2.61", "safe"), ("2.60", "grey"), ("1.10", "grey"), ("1.0999", "distress")],
)
def test_altman_zone_bounds(score: str, zone: str) -> None:
    assert altman_zone(D(score)) == zone


@pytest.mark.parametrize(
    ("score", "zone"),
    [("0.1601", "sound"), ("0.16", "warning"), ("0.04", "warning"), ("0.0399", "danger")],
)
def test_conan_holder_zone_bounds(score: str, zone: str) -> None:
    assert conan_holder_zone(D(score)) == zone


def test_ratios_and_their_missing_inputs() -> None:
    amounts = {**WORKED, "inventories": D(100), "revenue": D(2000), "net_income": D(50),
               "receivables": D(400), "financial_expenses": D(0)}  # fmt: skip
    result = compute_ratios(amounts)
    assert result.values["current_ratio"] == D(500) / D(300)
    assert result.values["quick_ratio"] == D(400) / D(300)
    assert result.values["equity_ratio"] == D("0.4")
    assert result.values["gearing"] == D("1.5")
    assert result.values["receivable_days"] == D(73)
    assert result.working_capital == D(200)
    assert result.values["interest_coverage"] is None
    assert result.missing["interest_coverage"] == ("financial_expenses (zero)",)
    assert result.values["payable_days"] is None
    assert result.missing["payable_days"] == ("payables",)
