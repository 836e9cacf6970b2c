"""Money: a Decimal amount with its ISO 4217 currency.

The ledger stores amounts as integers in minor units (cents for EUR) so that sums are
exact on every database; `Money` is the Decimal view used by the domain and the reports.
Rounding is always explicit: `quantize` rounds half-up to the currency's minor unit,
the convention of French invoicing and of the late-payment rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from encours.i18n import _

# ISO 4217 currencies whose minor unit is not 2 digits (the others use 2).
_MINOR_DIGITS_EXCEPTIONS: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0,
    "TND": 3, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


class MoneyError(ValueError):
    """An amount or currency that cannot be represented."""


def minor_digits(currency: str) -> int:
    """Number of decimal digits of the currency's minor unit (2 for EUR, 0 for JPY)."""
    return _MINOR_DIGITS_EXCEPTIONS.get(currency.upper(), 2)


def check_currency(currency: str) -> str:
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(
            _("invalid currency code {value!r}: expected 3 letters (ISO 4217)").format(
                value=currency
            )
        )
    return code


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    exp = Decimal(1).scaleb(-minor_digits(currency))
    return amount.quantize(exp, rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal | int | str, currency: str) -> int:
    """Exact conversion to integer minor units; refuses amounts finer than the minor unit."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(_("not a decimal amount: {value!r}").format(value=amount)) from exc
    if not value.is_finite():
        raise MoneyError(_("not a finite amount: {value!r}").format(value=amount))
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(
            _("amount {amount} has more decimals than {currency} allows ({digits})").format(
                amount=amount, currency=currency, digits=minor_digits(currency)
            )
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    digits = minor_digits(currency)
    return Decimal(int(minor)).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise MoneyError(f"Money amount must be a Decimal, got {type(self.amount).__name__}")
        object.__setattr__(self, "currency", check_currency(self.currency))

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        try:
            return cls(Decimal(amount), currency)
        except InvalidOperation as exc:
            raise MoneyError(_("not a decimal amount: {value!r}").format(value=amount)) from exc

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(from_minor(minor, currency), currency)

    @property
    def minor(self) -> int:
        return to_minor(self.quantized().amount, self.currency)

    def quantized(self) -> Money:
        return Money(quantize(self.amount, self.currency), self.currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(
                _("currency mismatch: {left} vs {right}").format(
                    left=self.currency, right=other.currency
                )
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply Money by a Decimal or an int, never a float")
        return Money(self.amount * Decimal(factor), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{quantize(self.amount, self.currency)} {self.currency}"
