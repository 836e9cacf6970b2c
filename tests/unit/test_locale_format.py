"""The fast amount formatting gives Babel's own text (encours.locale_format)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency
from hypothesis import given
from hypothesis import strategies as st

from encours.locale_format import _shape, format_day, format_money
from encours.money import from_minor
from encours.web.formatting import Formatter

LOCALE = {"fr": "fr_FR", "en": "en_GB"}
SHORT = {"fr": "#,##0\xa0¤", "en": "¤#,##0"}
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF", "BHD", "XOF", "SEK", "CAD"]


@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15),
    lang=st.sampled_from(["fr", "en"]),
    currency=st.sampled_from(CURRENCIES),
)
def test_money_is_babels_text(minor: int, lang: str, currency: str) -> None:
    expected = format_currency(from_minor(minor, currency), currency, locale=LOCALE[lang])
    assert format_money(minor, currency, lang) == expected
    assert Formatter(lang).money(minor, currency) == expected


@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15)
    | st.integers(min_value=-2000, max_value=2000),  # around zero and the .5 ties
    lang=st.sampled_from(["fr", "en"]),
    currency=st.sampled_from(CURRENCIES),
)
def test_short_money_is_babels_text_rounded_half_even(minor: int, lang: str, currency: str) -> None:
    expected = format_currency(from_minor(minor, currency), currency, locale=LOCALE[lang],
                               format=SHORT[lang], currency_digits=False)  # fmt: skip
    assert format_money(minor, currency, lang, short=True) == expected
    assert Formatter(lang).money(minor, currency, short=True) == expected


def test_money_examples_and_every_shape_is_confirmed() -> None:
    assert format_money(123456, "EUR", "fr") == "1\u202f234,56\xa0€"
    assert format_money(123456, "EUR", "en") == "€1,234.56"
    assert format_money(-250, "EUR", "fr", short=True) == "-2\xa0€"  # 2.50 -> 2 (half even)
    assert format_money(350, "EUR", "en", short=True) == "€4"
    assert format_money(1234, "BHD", "en") == "BHD1.234"  # three decimals
    for currency in CURRENCIES:  # the fast path is taken, not the fallback
        for lang in ("fr", "en"):
            assert _shape(currency, lang, False) is not None
            assert _shape(currency, lang, True) is not None
    assert Decimal("1234.56")  # amounts stay integers in minor units until displayed


@given(day=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31)),
       lang=st.sampled_from(["fr", "en"]),
       style=st.sampled_from(["short", "medium", "long", "MMM yy"]))  # fmt: skip
def test_days_are_babels_text(day: dt.date, lang: str, style: str) -> None:
    expected = format_date(day, format=style, locale=LOCALE[lang])
    assert format_day(day, lang, style) == expected
    if style != "short":
        assert Formatter(lang).date(day, style) == expected


def test_counts_and_figures_follow_the_language() -> None:
    from encours.locale_format import format_count, format_number

    assert format_count(1234567, "fr") == "1\u202f234\u202f567"
    assert format_count(1234567, "en") == "1,234,567"
    assert format_number("12.345", "fr") == "12,3" and format_number(12.35, "en", 2) == "12.35"
    assert format_number("n/a", "fr") == "n/a"  # not a number: as it is
    assert format_number(None, "en") == "—"


def test_generate_prints_its_summary_in_the_cli_language(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from encours.cli.app import app

    for lang, invoices, outstanding in (("fr", "2\u202f000", "\xa0€"), ("en", "2,000", "€")):
        args = ["--lang", lang, "generate", "--customers", "50", "--invoices", "2000"]
        r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / lang)])
        assert r.exit_code == 0, r.output
        line = next(x for x in r.output.splitlines() if "Factures " in x or "Invoices " in x)
        assert invoices in line
        money = next(x for x in r.output.splitlines() if "Encours " in x or "Outstanding" in x)
        assert outstanding in money
        assert money.count(",") == (1 if lang == "fr" else money.count(","))  # decimal comma
