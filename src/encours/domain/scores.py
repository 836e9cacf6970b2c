"""Published failure scores of a firm from its financial statements (pure, Decimal).

Both are linear discriminant scores: they rank firms, they are not probabilities. Each
result shows the score, its zone, every ratio and the inputs that were missing: a missing
input (None) or a zero denominator gives a partial result naming it, never a crash and
never a silent zero.

Altman Z'' (Altman 1995, the version for non-manufacturing and private firms):
    Z'' = 6.56 X1 + 3.26 X2 + 6.72 X3 + 1.05 X4
    X1 = working capital / total assets (working capital = current assets - current
         liabilities when it is not given), X2 = retained earnings / total assets,
    X3 = EBIT / total assets, X4 = book value of equity / total liabilities.
    Zones: Z'' > 2.60 safe; 1.10 to 2.60 grey; below 1.10 distress.

Conan-Holder (Conan and Holder 1979, French industrial SMEs):
    Z = 0.24 R1 + 0.22 R2 + 0.16 R3 - 0.87 R4 - 0.10 R5
    R1 = EBE (gross operating surplus) / total debt,
    R2 = permanent capital (equity + long-term debt) / total assets,
    R3 = (current assets - inventories) / total assets,
    R4 = financial expenses / revenue (net of VAT), R5 = personnel expenses / value added.
    Zones: Z > 0.16 sound; 0.04 to 0.16 warning; below 0.04 danger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

Amounts = Mapping[str, Decimal | int | None]

ALTMAN_COEFFICIENTS: tuple[tuple[str, Decimal], ...] = (
    ("x1", Decimal("6.56")),
    ("x2", Decimal("3.26")),
    ("x3", Decimal("6.72")),
    ("x4", Decimal("1.05")),
)
ALTMAN_SAFE = Decimal("2.60")
ALTMAN_DISTRESS = Decimal("1.10")

CONAN_HOLDER_COEFFICIENTS: tuple[tuple[str, Decimal], ...] = (
    ("r1", Decimal("0.24")),
    ("r2", Decimal("0.22")),
    ("r3", Decimal("0.16")),
    ("r4", Decimal("-0.87")),
    ("r5", Decimal("-0.10")),
)
CONAN_HOLDER_SOUND = Decimal("0.16")
CONAN_HOLDER_DANGER = Decimal("0.04")

FOUR_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """A failure score: `score` and `zone` are None when an input is missing (partial)."""

    name: str  # altman_z2 | conan_holder
    score: Decimal | None
    zone: str | None  # altman: safe | grey | distress; conan-holder: sound | warning | danger
    ratios: dict[str, Decimal | None] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # the inputs that were absent (or a zero denominator)

    @property
    def complete(self) -> bool:
        return self.score is not None

    def rounded(self) -> Decimal | None:
        """The score to 4 decimals (half-up), as shown."""
        return None if self.score is None else self.score.quantize(FOUR_PLACES, ROUND_HALF_UP)


def _value(amounts: Amounts, name: str) -> Decimal | None:
    value = amounts.get(name)
    return None if value is None else Decimal(value)


def _ratio(
    amounts: Amounts, numerator: Decimal | None, num_names: tuple[str, ...], denominator: str,
    missing: list[str],
) -> Decimal | None:  # fmt: skip
    den = _value(amounts, denominator)
    if numerator is None:
        missing.extend(n for n in num_names if _value(amounts, n) is None and n not in missing)
    if den is None:
        if denominator not in missing:
            missing.append(denominator)
        return None
    if den == 0:
        label = f"{denominator} (zero)"
        if label not in missing:
            missing.append(label)
        return None
    return None if numerator is None else numerator / den


def working_capital(amounts: Amounts) -> Decimal | None:
    """Working capital as given, else current assets - current liabilities (None if unknown)."""
    given = _value(amounts, "working_capital")
    if given is not None:
        return given
    assets, liabilities = _value(amounts, "current_assets"), _value(amounts, "current_liabilities")
    if assets is None or liabilities is None:
        return None
    return assets - liabilities


def _sum(*values: Decimal | None) -> Decimal | None:
    present = [v for v in values if v is not None]
    return None if len(present) < len(values) else sum(present, Decimal(0))


def _linear(coefficients: tuple[tuple[str, Decimal], ...], ratios: dict[str, Decimal | None]):  # noqa: ANN202
    if any(ratios[name] is None for name, _coef in coefficients):
        return None
    return sum((coef * ratios[name] for name, coef in coefficients), Decimal(0))  # type: ignore[operator]


def altman_zone(score: Decimal) -> str:
    """safe above 2.60, distress below 1.10, grey in between (bounds included)."""
    if score > ALTMAN_SAFE:
        return "safe"
    if score < ALTMAN_DISTRESS:
        return "distress"
    return "grey"


def conan_holder_zone(score: Decimal) -> str:
    """sound above 0.16, danger below 0.04, warning in between (bounds included)."""
    if score > CONAN_HOLDER_SOUND:
        return "sound"
    if score < CONAN_HOLDER_DANGER:
        return "danger"
    return "warning"


def altman_z2(amounts: Amounts) -> ScoreResult:
    """Altman Z'' = 6.56 X1 + 3.26 X2 + 6.72 X3 + 1.05 X4 (see the module docstring).

    `amounts` maps input names (working_capital or current_assets + current_liabilities,
    retained_earnings, ebit, equity, total_assets, total_liabilities) to Decimal or None.
    """
    missing: list[str] = []
    wc = working_capital(amounts)
    # without working capital, name the lines it is derived from
    wc_inputs = tuple(
        n for n in ("current_assets", "current_liabilities") if _value(amounts, n) is None
    )
    ratios = {
        "x1": _ratio(amounts, wc, wc_inputs, "total_assets", missing),
        "x2": _ratio(amounts, _value(amounts, "retained_earnings"), ("retained_earnings",),
                     "total_assets", missing),
        "x3": _ratio(amounts, _value(amounts, "ebit"), ("ebit",), "total_assets", missing),
        "x4": _ratio(amounts, _value(amounts, "equity"), ("equity",), "total_liabilities",
                     missing),
    }  # fmt: skip
    score = _linear(ALTMAN_COEFFICIENTS, ratios)
    zone = None if score is None else altman_zone(score)
    return ScoreResult("altman_z2", score, zone, ratios, tuple(missing))


def conan_holder(amounts: Amounts) -> ScoreResult:
    """Conan-Holder Z = 0.24 R1 + 0.22 R2 + 0.16 R3 - 0.87 R4 - 0.10 R5 (module docstring).

    Inputs: ebe, total_liabilities (total debt), equity, long_term_debt, total_assets,
    current_assets, inventories, financial_expenses, revenue, personnel_expenses,
    value_added.
    """
    missing: list[str] = []
    v = {name: _value(amounts, name) for name in (
        "ebe", "equity", "long_term_debt", "current_assets", "inventories",
        "financial_expenses", "personnel_expenses")}  # fmt: skip
    ratios = {
        "r1": _ratio(amounts, v["ebe"], ("ebe",), "total_liabilities", missing),
        "r2": _ratio(amounts, _sum(v["equity"], v["long_term_debt"]),
                     ("equity", "long_term_debt"), "total_assets", missing),
        "r3": _ratio(amounts, None if v["current_assets"] is None or v["inventories"] is None
                     else v["current_assets"] - v["inventories"],
                     ("current_assets", "inventories"), "total_assets", missing),
        "r4": _ratio(amounts, v["financial_expenses"], ("financial_expenses",), "revenue",
                     missing),
        "r5": _ratio(amounts, v["personnel_expenses"], ("personnel_expenses",), "value_added",
                     missing),
    }  # fmt: skip
    score = _linear(CONAN_HOLDER_COEFFICIENTS, ratios)
    zone = None if score is None else conan_holder_zone(score)
    return ScoreResult("conan_holder", score, zone, ratios, tuple(missing))
