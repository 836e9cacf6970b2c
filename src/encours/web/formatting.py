"""Per-request language and locale formatting (Babel) for pages.

The CLI's `encours.i18n._` follows one process-wide language; a server answers people in
different languages at once, so pages translate with the catalogue of the request's
language (`gettext_for(lang)`) and format amounts and dates with Babel for that locale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

from babel.core import Locale
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent

from encours.i18n import DEFAULT_LANGUAGE, SUPPORTED, translations
from encours.locale_format import format_day, format_money, locale_of
from encours.money import from_minor


def pick(value: str | None) -> str | None:
    if not value:
        return None
    code = value.strip().lower()[:2]
    return code if code in SUPPORTED else None


def gettext_for(lang: str) -> Callable[[str], str]:
    return translations(lang if lang in SUPPORTED else DEFAULT_LANGUAGE).gettext


# Babel parses its pattern and locale data for every number (~30 us): the figures of a
# page (KPIs, shares, trends) repeat from one request to the next, so they are kept.
@lru_cache(maxsize=20_000)
def _decimal(lang: str, value: Decimal | int | float, pattern: str | None) -> str:
    return format_decimal(value, format=pattern, locale=locale_of(lang))


@lru_cache(maxsize=20_000)
def _percent(lang: str, value: float, pattern: str) -> str:
    return format_percent(value, format=pattern, locale=locale_of(lang))


class Formatter:
    """Babel formatting in one language (amounts are integer minor units)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in SUPPORTED else DEFAULT_LANGUAGE
        self.locale = Locale.parse(locale_of(self.lang))  # parsed once, not per value

    def money(self, minor: int | None, currency: str | None, short: bool = False) -> str:
        """Babel's text (`short`: whole units), put together without Babel's per-amount
        parsing (encours.locale_format)."""
        if minor is None or currency is None:
            return "—"
        return format_money(int(minor), currency, self.lang, short)

    def plain(self, minor: int | None, currency: str) -> str:
        """An amount as typed in a form field (no grouping, '.' decimal point)."""
        return "" if minor is None else str(from_minor(int(minor), currency))

    def amount(self, value: Decimal | int | float | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        return _decimal(self.lang, value, "#,##0" + ("." + "0" * digits if digits else ""))

    def number(self, value: float | int | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        return _decimal(self.lang, round(float(value), digits), None)

    def percent(self, value: float | None, digits: int = 1) -> str:
        """`value` is a fraction (0.25 -> 25 %)."""
        if value is None:
            return "—"
        return _percent(self.lang, value, "#,##0" + ("." + "0" * digits if digits else "") + " %")

    def date(self, value: dt.date | None, fmt: str = "medium") -> str:
        if value is None:
            return "—"
        if isinstance(value, str):
            value = dt.date.fromisoformat(value)
        if isinstance(value, dt.datetime):
            value = value.date()
        return format_day(value, self.lang, fmt)

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(value, format="short", locale=self.locale)

    def month(self, value: dt.date) -> str:
        return format_day(value, self.lang, "MMM yy")
