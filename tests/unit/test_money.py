from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encours.money import Money, MoneyError, from_minor, minor_digits, quantize, to_minor

amounts = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False,
                      allow_infinity=False)  # fmt: skip


@given(amounts)
def test_minor_units_round_trip(amount: Decimal) -> None:
    assert from_minor(to_minor(amount, "EUR"), "EUR") == amount


@given(st.lists(amounts, min_size=1, max_size=30))
def test_sum_in_minor_units_is_exact(values: list[Decimal]) -> None:
    assert from_minor(sum(to_minor(v, "EUR") for v in values), "EUR") == sum(values)


def test_currency_digits() -> None:
    assert minor_digits("EUR") == 2
    assert minor_digits("JPY") == 0
    assert to_minor("1500", "JPY") == 1500
    assert to_minor("1.234", "KWD") == 1234


def test_too_many_decimals_is_refused() -> None:
    with pytest.raises(MoneyError, match="more decimals"):
        to_minor("10.005", "EUR")


def test_half_up_rounding() -> None:
    assert quantize(Decimal("143.0136"), "EUR") == Decimal("143.01")
    assert quantize(Decimal("0.005"), "EUR") == Decimal("0.01")
    assert quantize(Decimal("-0.005"), "EUR") == Decimal("-0.01")


def test_money_arithmetic_refuses_mixed_currencies_and_floats() -> None:
    a = Money.of("10.00", "EUR")
    assert a + Money.of("2.50", "EUR") == Money.of("12.50", "EUR")
    with pytest.raises(MoneyError):
        a + Money.of("1", "USD")
    with pytest.raises(TypeError):
        a * 1.5  # type: ignore[operator]
    with pytest.raises(MoneyError):
        Money.of("1", "EURO")
    assert str(Money.of("3", "EUR")) == "3.00 EUR"
    assert Money.of("1.005", "EUR").minor == 101
