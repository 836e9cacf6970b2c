from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encours.domain.terms import DEFAULT_TERMS, PaymentTerms, TermsError, due_dates

NET30 = PaymentTerms(30, False)
EOM45 = PaymentTerms(45, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 days net", NET30),
        ("30 days", NET30),
        ("net 30", NET30),
        ("Net 30 days", NET30),
        ("30", NET30),
        ("30d", NET30),
        ("  30   DAYS  NET ", NET30),
        ("30 jours", NET30),
        ("30 jours net", NET30),
        ("30 jours nets", NET30),
        ("30 j", NET30),
        ("1 day", PaymentTerms(1, False)),
        ("60 jours date de facture", PaymentTerms(60, False)),
        ("60 jours date d'émission", PaymentTerms(60, False)),
        ("60 days from invoice date", PaymentTerms(60, False)),
        ("45 days end of month", EOM45),
        ("45 days end-of-month", EOM45),
        ("45 days EOM", EOM45),
        ("45 jours fin de mois", EOM45),
        ("45 JOURS FDM", EOM45),
        ("45j fdm", EOM45),
        ("fin de mois 45 jours", EOM45),
        ("EOM 45", EOM45),
        ("comptant", PaymentTerms(0, False)),
        ("Cash", PaymentTerms(0, False)),
        ("immediate", PaymentTerms(0, False)),
        ("immédiat", PaymentTerms(0, False)),
        ("à réception", PaymentTerms(0, False)),
        ("A RECEPTION", PaymentTerms(0, False)),
        ("fin de mois", PaymentTerms(0, True)),
        ("30 jours fin de mois le 10", PaymentTerms(30, True, 10)),
        ("30 jours fin de mois, le 10", PaymentTerms(30, True, 10)),
        ("30 days end of month the 10th", PaymentTerms(30, True, 10)),
        ("30 days EOM on the 15th", PaymentTerms(30, True, 15)),
        ("fin de mois 30 jours le 5", PaymentTerms(30, True, 5)),
    ],
)
def test_parse(text: str, expected: PaymentTerms) -> None:
    assert PaymentTerms.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "soon", "30 weeks", "-30 days", "30 days le 10", "1000 days", "45 fdm fin de mois", "3.5"],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(TermsError, match="expected|only allowed|0 to"):
        PaymentTerms.parse(text)


def test_parse_error_message_lists_expected_forms() -> None:
    with pytest.raises(TermsError) as info:
        PaymentTerms.parse("whenever")
    assert "'whenever'" in str(info.value)
    assert "45 days end of month" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": -1, "end_of_month": False},
        {"days": 30, "end_of_month": False, "day_of_month": 10},
        {"days": 30, "end_of_month": True, "day_of_month": 0},
        {"days": 30, "end_of_month": True, "day_of_month": 32},
        {"days": True, "end_of_month": False},
    ],
)
def test_constructor_validates(kwargs: dict) -> None:
    with pytest.raises(TermsError):
        PaymentTerms(**kwargs)


@pytest.mark.parametrize(
    ("terms", "text"),
    [
        (NET30, "30 days net"),
        (EOM45, "45 days end of month"),
        (PaymentTerms(0, False), "cash"),
        (PaymentTerms(1, False), "1 day net"),
        (PaymentTerms(30, True, 10), "30 days end of month the 10th"),
        (PaymentTerms(30, True, 1), "30 days end of month the 1st"),
        (PaymentTerms(30, True, 2), "30 days end of month the 2nd"),
        (PaymentTerms(30, True, 3), "30 days end of month the 3rd"),
        (PaymentTerms(30, True, 11), "30 days end of month the 11th"),
        (PaymentTerms(30, True, 22), "30 days end of month the 22nd"),
    ],
)
def test_str_is_canonical_and_round_trips(terms: PaymentTerms, text: str) -> None:
    assert str(terms) == text
    assert PaymentTerms.parse(text) == terms


@given(
    days=st.integers(0, 999),
    eom=st.booleans(),
    dom=st.none() | st.integers(1, 31),
)
@settings(max_examples=100)
def test_str_round_trips(days: int, eom: bool, dom: int | None) -> None:
    terms = PaymentTerms(days, eom, dom if eom else None)
    assert PaymentTerms.parse(str(terms)) == terms


@pytest.mark.parametrize(
    ("text", "issue", "due"),
    [
        ("30 days net", date(2024, 1, 15), date(2024, 2, 14)),
        ("comptant", date(2024, 1, 15), date(2024, 1, 15)),
        ("60 jours", date(2023, 12, 31), date(2024, 2, 29)),
        # 45 days end of month: +45 days, then the end of that month
        ("45 jours fin de mois", date(2024, 1, 15), date(2024, 2, 29)),  # leap year
        ("45 jours fin de mois", date(2023, 1, 10), date(2023, 2, 28)),
        ("45 jours fin de mois", date(2023, 1, 15), date(2023, 3, 31)),
        ("45 jours fin de mois", date(2023, 12, 20), date(2024, 2, 29)),  # across the year
        ("45 jours fin de mois", date(2024, 1, 17), date(2024, 3, 31)),
        ("fin de mois", date(2024, 2, 10), date(2024, 2, 29)),
        # day of month: the d-th of the month after the end-of-month date
        ("30 jours fin de mois le 10", date(2024, 1, 15), date(2024, 3, 10)),
        ("30 jours fin de mois le 10", date(2023, 12, 20), date(2024, 2, 10)),
        ("30 jours fin de mois le 10", date(2023, 11, 15), date(2024, 1, 10)),  # Dec -> Jan
        ("0 days end of month the 31st", date(2024, 1, 5), date(2024, 2, 29)),  # clamped
        ("0 days end of month the 31st", date(2024, 3, 5), date(2024, 4, 30)),  # clamped
    ],
)
def test_due_date(text: str, issue: date, due: date) -> None:
    assert PaymentTerms.parse(text).due_date(issue) == due


@pytest.mark.parametrize(
    ("terms", "exceeds"),
    [
        (PaymentTerms(60, False), False),
        (PaymentTerms(61, False), True),
        (PaymentTerms(45, True), False),
        (PaymentTerms(46, True), True),
        (PaymentTerms(60, True), True),
        (PaymentTerms(30, True, 10), False),
        (PaymentTerms(30, True, 15), False),
        (PaymentTerms(45, True, 10), True),
        (PaymentTerms(0, False), False),
    ],
)
def test_exceeds_legal_maximum(terms: PaymentTerms, exceeds: bool) -> None:
    assert terms.exceeds_legal_maximum() is exceeds


def test_default_terms_is_thirty_days() -> None:
    assert DEFAULT_TERMS == NET30


TEXTS = [
    "30 days net",
    "net 60",
    "45 jours fin de mois",
    "45 days EOM",
    "30 jours fin de mois le 10",
    "0 days end of month the 31st",
    "fin de mois 15 jours le 28",
    "comptant",
    "90",
]


@given(
    rows=st.lists(
        st.tuples(
            st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)),
            st.sampled_from(TEXTS),
        ),
        min_size=1,
        max_size=60,
    )
)
@settings(max_examples=80, deadline=None)
def test_due_dates_matches_scalar(rows: list[tuple[date, str]]) -> None:
    issues = pl.Series("issue", [r[0] for r in rows], dtype=pl.Date)
    texts = pl.Series("terms", [r[1] for r in rows])
    result = due_dates(issues, texts)
    assert result.dtype == pl.Date
    assert result.to_list() == [PaymentTerms.parse(t).due_date(d) for d, t in rows]


def test_due_dates_every_day_of_leap_and_common_years() -> None:
    days = pl.date_range(date(2023, 1, 1), date(2025, 1, 31), eager=True)
    for text in TEXTS:
        terms = PaymentTerms.parse(text)
        got = due_dates(days, pl.Series([text] * len(days)))
        assert got.to_list() == [terms.due_date(d) for d in days.to_list()], text


def test_due_dates_nulls_propagate() -> None:
    issues = pl.Series([date(2024, 1, 15), None, date(2024, 1, 15)], dtype=pl.Date)
    texts = pl.Series(["30 days", "30 days", None])
    assert due_dates(issues, texts).to_list() == [date(2024, 2, 14), None, None]
    filled = due_dates(issues, texts.fill_null(str(DEFAULT_TERMS)))
    assert filled.to_list() == [date(2024, 2, 14), None, date(2024, 2, 14)]


def test_due_dates_accepts_categorical_terms() -> None:
    issues = pl.Series([date(2024, 1, 15)], dtype=pl.Date)
    texts = pl.Series(["45 jours FDM"], dtype=pl.Categorical)
    assert due_dates(issues, texts).to_list() == [date(2024, 2, 29)]


def test_due_dates_lists_bad_terms() -> None:
    issues = pl.Series([date(2024, 1, 1)] * 4, dtype=pl.Date)
    texts = pl.Series(["30 days", "soon", "later", "soon"])
    with pytest.raises(TermsError) as info:
        due_dates(issues, texts)
    message = str(info.value)
    assert "'later', 'soon'" in message
    assert "expected" in message


def test_due_dates_checks_inputs() -> None:
    with pytest.raises(ValueError, match="length"):
        due_dates(pl.Series([date(2024, 1, 1)], dtype=pl.Date), pl.Series(["30", "30"]))
    with pytest.raises(TypeError, match="Date"):
        due_dates(pl.Series(["2024-01-01"]), pl.Series(["30"]))


def test_due_dates_empty() -> None:
    result = due_dates(pl.Series([], dtype=pl.Date), pl.Series([], dtype=pl.String))
    assert result.dtype == pl.Date
    assert result.len() == 0
