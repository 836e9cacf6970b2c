"""Amounts and dates the way a language writes them (Babel's CLDR data), fast.

Babel's `format_currency` parses its pattern, the locale and the currency's plural names
for every amount (~35 us each, most of a page or of a dunning run that shows thousands).
Here Babel formats one probe per (currency, locale, style); its text gives the prefix, the
group and decimal separators and the suffix, and every amount is then put together from
those with integer arithmetic. The result is Babel's own text (property-tested against
`format_currency` in tests/unit/test_locale_format.py); a shape that the probe does not
confirm falls back to Babel for every amount. Dates are Babel's, cached per day.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import NamedTuple

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from encours.i18n import DEFAULT_LANGUAGE
from encours.money import from_minor, minor_digits

LOCALES = {"fr": "fr_FR", "en": "en_GB"}

# Whole units, the currency after the number in French, before it in English.
SHORT_PATTERNS = {"fr": "#,##0\xa0¤", "en": "¤#,##0"}


def locale_of(lang: str | None) -> str:
    """The Babel locale of a language code (French when unknown)."""
    return LOCALES.get(lang or DEFAULT_LANGUAGE, LOCALES[DEFAULT_LANGUAGE])


class _Shape(NamedTuple):
    prefix: str
    group: str
    decimal: str
    suffix: str
    digits: int  # digits after the decimal separator


def _babel(minor: int, currency: str, lang: str, short: bool) -> str:
    value = from_minor(minor, currency)
    if short:
        return format_currency(value, currency, locale=locale_of(lang),
                               format=SHORT_PATTERNS.get(lang, SHORT_PATTERNS["fr"]),
                               currency_digits=False)  # fmt: skip
    return format_currency(value, currency, locale=locale_of(lang))


def _assemble(shape: _Shape, minor: int, currency_digits: int) -> str:
    """`minor` (in the currency's minor units) written with `shape`."""
    if shape.digits == currency_digits:
        units, fraction = divmod(abs(minor), 10**currency_digits)
    else:  # whole units (short): Babel rounds half to even
        value = Decimal(abs(minor)).scaleb(-currency_digits)
        units, fraction = int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), 0
    number = f"{units:,}".replace(",", shape.group)
    if shape.digits:
        number += shape.decimal + str(fraction).zfill(shape.digits)
    return f"{'-' if minor < 0 else ''}{shape.prefix}{number}{shape.suffix}"


@lru_cache(maxsize=256)
def _shape(currency: str, lang: str, short: bool) -> _Shape | None:
    """The shape of Babel's text for this currency, language and style, read from a probe
    and confirmed on other amounts; None: not this simple shape (use Babel)."""
    digits = minor_digits(currency)
    shown = 0 if short else digits
    probe = 1234567 * 10**digits + (int("123456789"[:digits]) if digits else 0)
    text = _babel(probe, currency, lang, short)
    positions = [i for i, ch in enumerate(text) if ch.isdigit()]
    if not positions:
        return None
    first, last = positions[0], positions[-1]
    body = text[first : last + 1]
    if len(body) < 2 or body[1].isdigit():
        return None
    decimal = body[-(shown + 1)] if shown else ""
    shape = _Shape(text[:first], body[1], decimal, text[last + 1 :], shown)
    checks = (probe, -probe, 0, 5, -5, 10**digits, 999 * 10**digits + 1, -(10**15) - 7)
    if all(_assemble(shape, m, digits) == _babel(m, currency, lang, short) for m in checks):
        return shape
    return None


def format_money(minor: int, currency: str, lang: str = DEFAULT_LANGUAGE,
                 short: bool = False) -> str:  # fmt: skip
    """An amount in minor units the way the language writes it (`1 234,50 €`, `€1,234.50`;
    `short`: whole units, `1 235 €`). Same text as babel.numbers.format_currency."""
    minor = int(minor)
    shape = _shape(currency, lang if lang in LOCALES else DEFAULT_LANGUAGE, short)
    if shape is None:
        return _babel(minor, currency, lang, short)
    return _assemble(shape, minor, minor_digits(currency))


def format_count(count: int, lang: str = DEFAULT_LANGUAGE) -> str:
    """A whole number with the language's digit grouping (`1 234 567`, `1,234,567`)."""
    return format_decimal(int(count), format="#,##0", locale=locale_of(lang))


def format_number(value: Decimal | float | str | None, lang: str = DEFAULT_LANGUAGE,
                  digits: int = 1) -> str:  # fmt: skip
    """A decimal figure (a ratio, a number of days) with `digits` decimals (`12,3`, `12.3`);
    "—" for None, and text that is not a number as it is."""
    if value is None:
        return "—"
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if not number.is_finite():
        return str(value)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(number, format=pattern, locale=locale_of(lang))


@lru_cache(maxsize=20_000)
def format_day(day: dt.date, lang: str = DEFAULT_LANGUAGE, style: str = "short") -> str:
    """A date the way the language writes it (01/03/2024; 1 mars 2024 in the long style;
    any Babel format or pattern, e.g. "MMM yy")."""
    return format_date(day, format=style, locale=locale_of(lang))


__all__ = ["LOCALES", "SHORT_PATTERNS", "format_count", "format_day", "format_money",
           "format_number", "locale_of"]  # fmt: skip
