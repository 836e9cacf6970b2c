"""The usual financial ratios of a customer's statements (pure, Decimal).

A ratio whose input is missing (None) or whose denominator is zero is None, and the
result names what was missing: a partial result, never a silent zero.

- current_ratio = current assets / current liabilities
- quick_ratio = (current assets - inventories) / current liabilities
- equity_ratio = equity / total assets (autonomie financière)
- gearing = total liabilities / equity (endettement)
- ebit_margin = EBIT / revenue; net_margin = net income / revenue
- return_on_assets = net income / total assets; return_on_equity = net income / equity
- interest_coverage = EBIT / financial expenses
- receivable_days = receivables / revenue x 365 (the customer's own DSO)
- payable_days = payables / revenue x 365 (a proxy: purchases are seldom given)
- working_capital = given, else current assets - current liabilities (an amount)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from encours.domain.scores import Amounts, working_capital

DAYS_PER_YEAR = Decimal(365)

# name -> (numerator inputs, denominator input, factor); numerator "a-b" subtracts b
RATIOS: dict[str, tuple[tuple[str, ...], str, Decimal]] = {
    "current_ratio": (("current_assets",), "current_liabilities", Decimal(1)),
    "quick_ratio": (("current_assets", "inventories"), "current_liabilities", Decimal(1)),
    "equity_ratio": (("equity",), "total_assets", Decimal(1)),
    "gearing": (("total_liabilities",), "equity", Decimal(1)),
    "ebit_margin": (("ebit",), "revenue", Decimal(1)),
    "net_margin": (("net_income",), "revenue", Decimal(1)),
    "return_on_assets": (("net_income",), "total_assets", Decimal(1)),
    "return_on_equity": (("net_income",), "equity", Decimal(1)),
    "interest_coverage": (("ebit",), "financial_expenses", Decimal(1)),
    "receivable_days": (("receivables",), "revenue", DAYS_PER_YEAR),
    "payable_days": (("payables",), "revenue", DAYS_PER_YEAR),
}


@dataclass(frozen=True, slots=True)
class RatioResult:
    values: dict[str, Decimal | None]
    working_capital: Decimal | None
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ratio -> inputs

    def rounded(self, places: int = 4) -> dict[str, Decimal | None]:
        exp = Decimal(1).scaleb(-places)
        return {
            k: None if v is None else v.quantize(exp, ROUND_HALF_UP) for k, v in self.values.items()
        }


def compute_ratios(amounts: Amounts) -> RatioResult:
    """Every ratio of RATIOS from the statement's amounts (see the module docstring)."""
    values: dict[str, Decimal | None] = {}
    missing: dict[str, tuple[str, ...]] = {}
    for name, (numerator, denominator, factor) in RATIOS.items():
        inputs = {n: amounts.get(n) for n in (*numerator, denominator)}
        absent = [n for n, v in inputs.items() if v is None]
        if not absent and Decimal(inputs[denominator]) == 0:  # type: ignore[arg-type]
            absent = [f"{denominator} (zero)"]
        if absent:
            values[name] = None
            missing[name] = tuple(absent)
            continue
        num = Decimal(inputs[numerator[0]])  # type: ignore[arg-type]
        for other in numerator[1:]:
            num -= Decimal(inputs[other])  # type: ignore[arg-type]
        values[name] = num / Decimal(inputs[denominator]) * factor  # type: ignore[arg-type]
    return RatioResult(values, working_capital(amounts), missing)
