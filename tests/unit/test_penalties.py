"""French B2B late-payment penalties (encours.domain.penalties)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encours.domain.penalties import (
    FIXED_INDEMNITY_EUR,
    MissingRateError,
    PenaltyError,
    RateTable,
    accrue,
    compute_penalties,
    half_year_label,
    half_year_start,
    next_half_year_start,
)
from encours.store.rates import missing_current_rate_warning, shipped_rates

D = Decimal
day = dt.date

# The reference table of /work/shared/reference/french-late-payment-rules.md.
ECB_ROWS = [
    ("2016-03-16", "0.00"),
    ("2022-07-27", "0.50"),
    ("2022-09-14", "1.25"),
    ("2022-11-02", "2.00"),
    ("2022-12-21", "2.50"),
    ("2023-02-08", "3.00"),
    ("2023-03-22", "3.50"),
    ("2023-05-10", "3.75"),
    ("2023-06-21", "4.00"),
    ("2023-08-02", "4.25"),
    ("2023-09-20", "4.50"),
    ("2024-06-12", "4.25"),
    ("2024-09-18", "3.65"),
    ("2024-10-23", "3.40"),
    ("2024-12-18", "3.15"),
    ("2025-02-05", "2.90"),
    ("2025-03-12", "2.65"),
    ("2025-04-23", "2.40"),
    ("2025-06-11", "2.15"),
]
LEGAL_PRO_ROWS = [
    ("2024-01-01", "5.07"),
    ("2024-07-01", "4.92"),
    ("2025-01-01", "3.71"),
    ("2025-07-01", "2.76"),
]
RATES = RateTable(
    [("ecb", dt.date.fromisoformat(d), D(r)) for d, r in ECB_ROWS]
    + [("legal_pro", dt.date.fromisoformat(d), D(r)) for d, r in LEGAL_PRO_ROWS]
)


def test_shipped_csv_matches_the_reference_table():
    rows = {(r.kind, r.valid_from.isoformat(), str(r.rate)) for r in shipped_rates()}
    expected = {("ecb", d, r) for d, r in ECB_ROWS} | {
        ("legal_pro", d, r) for d, r in LEGAL_PRO_ROWS
    }
    assert rows == expected


# --- rates ------------------------------------------------------------------------------


def test_half_years():
    assert half_year_start(day(2024, 6, 30)) == day(2024, 1, 1)
    assert half_year_start(day(2024, 7, 1)) == day(2024, 7, 1)
    assert next_half_year_start(day(2024, 12, 31)) == day(2025, 1, 1)
    assert next_half_year_start(day(2024, 1, 1)) == day(2024, 7, 1)
    assert half_year_label(day(2026, 11, 23)) == "2026 H2"


@pytest.mark.parametrize(
    ("when", "ecb", "statutory"),
    [
        (day(2024, 3, 1), "4.50", "14.50"),  # in force on 2024-01-01: 2023-09-20 4.50
        (day(2024, 6, 30), "4.50", "14.50"),  # the 2024-06-12 cut does not count for H1
        (day(2024, 7, 1), "4.25", "14.25"),
        (day(2025, 1, 15), "3.15", "13.15"),
        (day(2025, 12, 31), "2.15", "12.15"),
        (day(2023, 1, 1), "2.50", "12.50"),
        (day(2017, 5, 1), "0.00", "10.00"),
    ],
)
def test_ecb_rate_for_half_year(when, ecb, statutory):
    assert RATES.ecb_rate_for_half_year(when) == D(ecb)
    assert str(RATES.statutory_rate(when)) == statutory


def test_change_on_the_reference_day_itself_applies():
    table = RateTable([("ecb", day(2020, 1, 1), D("1")), ("ecb", day(2024, 7, 1), D("3.5"))])
    assert table.statutory_rate(day(2024, 8, 1)) == D("13.50")
    assert str(table.statutory_rate(day(2024, 8, 1))) == "13.50"  # shown with 2 decimals
    assert table.statutory_rate(day(2024, 6, 30)) == D("11.00")


def test_missing_rate_names_the_half_year():
    with pytest.raises(MissingRateError, match="2016 H1") as info:
        RATES.ecb_rate_for_half_year(day(2016, 3, 20))  # table starts 2016-03-16
    assert info.value.reference_day == day(2016, 1, 1)
    assert info.value.kind == "ecb"
    with pytest.raises(MissingRateError, match="2023 H2"):
        RATES.penalty_rate(day(2023, 8, 1), contractual_rate=D("20"))  # no legal_pro rate


def test_unknown_kind_rejected():
    with pytest.raises(PenaltyError):
        RateTable([("euribor", day(2024, 1, 1), D("3"))])


def test_penalty_rate_floor_three_times_legal_rate():
    # 2024 H2: 3 x 4.92 = 14.76
    assert RATES.penalty_rate(day(2024, 8, 1), contractual_rate=D("5")) == D("14.76")
    assert RATES.penalty_rate(day(2024, 8, 1), contractual_rate=D("15")) == D("15.00")
    assert RATES.penalty_rate(day(2024, 8, 1)) == D("14.25")  # no contract: ECB + 10


# --- worked example and hand-computed cases ---------------------------------------------


def test_worked_example():
    result = compute_penalties(
        D("12000.00"), day(2024, 5, 31), [(day(2024, 8, 30), D("12000.00"))], RATES
    )
    assert result.penalties == D("428.79")
    assert str(result.penalties) == "428.79"
    assert result.indemnity == D("40.00")
    assert result.days_late == 91
    assert result.reason is None
    p1, p2 = result.periods
    # 12000 x 0.145 x 30 / 365 = 143.0137 -> 143.01
    assert (p1.start, p1.end, p1.days, p1.rate, p1.interest) == (
        day(2024, 6, 1),
        day(2024, 6, 30),
        30,
        D("14.50"),
        D("143.01"),
    )
    # 12000 x 0.1425 x 61 / 365 = 285.7808 -> 285.78
    assert (p2.start, p2.end, p2.days, p2.rate, p2.interest) == (
        day(2024, 7, 1),
        day(2024, 8, 30),
        61,
        D("14.25"),
        D("285.78"),
    )
    assert p1.principal == p2.principal == D("12000.00")


def test_partial_payments_across_year_end():
    # 10000.00 due 2024-11-30; 4000.00 paid 2024-12-20, 6000.00 paid 2025-02-14.
    # 2024-12-01..2024-12-20: 20 days on 10000 at 14.25 (2024 H2: ECB 4.25 on 07-01 + 10)
    #   10000 x 0.1425 x 20 / 365 = 28500 / 365 = 78.0822 -> 78.08
    # 2024-12-21..2024-12-31: 11 days on 6000 at 14.25
    #   6000 x 0.1425 x 11 / 365 = 9405 / 365 = 25.7671 -> 25.77
    # 2025-01-01..2025-02-14: 45 days on 6000 at 13.15 (ECB 3.15 on 2025-01-01 + 10)
    #   6000 x 0.1315 x 45 / 365 = 35505 / 365 = 97.2740 -> 97.27
    # total 78.08 + 25.77 + 97.27 = 201.12; days late 2025-02-14 - 2024-11-30 = 76
    result = compute_penalties(
        D("10000.00"),
        day(2024, 11, 30),
        [(day(2025, 2, 14), D("6000.00")), (day(2024, 12, 20), D("4000.00"))],  # any order
        RATES,
    )
    assert [(p.start, p.end, p.days, p.principal, p.rate, p.interest) for p in result.periods] == [
        (day(2024, 12, 1), day(2024, 12, 20), 20, D("10000.00"), D("14.25"), D("78.08")),
        (day(2024, 12, 21), day(2024, 12, 31), 11, D("6000.00"), D("14.25"), D("25.77")),
        (day(2025, 1, 1), day(2025, 2, 14), 45, D("6000.00"), D("13.15"), D("97.27")),
    ]
    assert result.penalties == D("201.12")
    assert result.days_late == 76
    assert result.indemnity == D("40.00")


def test_open_invoice_across_mid_year_with_payment_before_due():
    # 3000.00 due 2025-06-20, 1000.00 paid 2025-06-10 (on time: no penalty on it),
    # 500.00 paid 2025-07-05, still open as of 2025-07-31.
    # 2025-06-21..2025-06-30: 10 days on 2000 at 13.15 (2025 H1)
    #   2000 x 0.1315 x 10 / 365 = 2630 / 365 = 7.2055 -> 7.21
    # 2025-07-01..2025-07-05: 5 days on 2000 at 12.15 (2025 H2: ECB 2.15 on 07-01 + 10)
    #   2000 x 0.1215 x 5 / 365 = 1215 / 365 = 3.3288 -> 3.33
    # 2025-07-06..2025-07-31: 26 days on 1500 at 12.15
    #   1500 x 0.1215 x 26 / 365 = 4738.5 / 365 = 12.9822 -> 12.98
    # total 7.21 + 3.33 + 12.98 = 23.52; days late 2025-07-31 - 2025-06-20 = 41
    result = compute_penalties(
        D("3000.00"),
        day(2025, 6, 20),
        [(day(2025, 6, 10), D("1000.00")), (day(2025, 7, 5), D("500.00"))],
        RATES,
        as_of=day(2025, 7, 31),
    )
    assert [p.interest for p in result.periods] == [D("7.21"), D("3.33"), D("12.98")]
    assert [p.days for p in result.periods] == [10, 5, 26]
    assert [p.principal for p in result.periods] == [D("2000.00"), D("2000.00"), D("1500.00")]
    assert result.penalties == D("23.52")
    assert result.days_late == 41
    assert result.indemnity == D("40.00")


def test_contractual_rate_below_floor_is_raised():
    # 5000.00 due 2025-06-15, contractual 5 %, open as of 2025-07-10.
    # 2025 H1 floor 3 x 3.71 = 11.13 > 5: 2025-06-16..06-30, 15 days
    #   5000 x 0.1113 x 15 / 365 = 8347.5 / 365 = 22.8699 -> 22.87
    # 2025 H2 floor 3 x 2.76 = 8.28 > 5: 2025-07-01..07-10, 10 days
    #   5000 x 0.0828 x 10 / 365 = 4140 / 365 = 11.3425 -> 11.34
    # total 34.21
    result = compute_penalties(
        D("5000.00"),
        day(2025, 6, 15),
        [],
        RATES,
        as_of=day(2025, 7, 10),
        contractual_rate=D("5"),
    )
    assert [p.rate for p in result.periods] == [D("11.13"), D("8.28")]
    assert [p.interest for p in result.periods] == [D("22.87"), D("11.34")]
    assert result.penalties == D("34.21")
    assert result.days_late == 25


def test_contractual_rate_above_floor_is_used():
    # 1000.00 due 2024-01-31 at 20 %, paid 2024-03-01: 30 days (Feb has 29 in 2024 + 1)
    #   1000 x 0.20 x 30 / 365 = 6000 / 365 = 16.4384 -> 16.44
    result = compute_penalties(
        D("1000.00"),
        day(2024, 1, 31),
        [(day(2024, 3, 1), D("1000.00"))],
        RATES,
        contractual_rate=D("20"),
    )
    assert result.days_late == 30
    assert [p.rate for p in result.periods] == [D("20.00")]
    assert result.penalties == D("16.44")


def test_rounding_half_up_per_period():
    # 18.25 at 10 % (ECB 0 + 10) for 1 day: 18.25 x 0.10 x 1 / 365 = 0.005 exactly
    # -> 0.01 half-up (banker's rounding would give 0.00)
    table = RateTable([("ecb", day(2020, 1, 1), D("0"))])  # statutory 10 %
    result = compute_penalties(D("18.25"), day(2024, 2, 1), [(day(2024, 2, 2), D("18.25"))], table)
    assert result.penalties == D("0.01")


def test_paid_on_time_no_penalty_no_indemnity():
    for paid_on in (day(2024, 5, 1), day(2024, 5, 31)):
        result = compute_penalties(
            D("12000.00"), day(2024, 5, 31), [(paid_on, D("12000.00"))], RATES
        )
        assert result.penalties == 0
        assert result.indemnity == 0
        assert result.days_late == 0
        assert result.periods == []


def test_paid_one_day_late():
    # 12000 x 0.145 x 1 / 365 = 4.7671 -> 4.77
    result = compute_penalties(
        D("12000.00"), day(2024, 5, 31), [(day(2024, 6, 1), D("12000"))], RATES
    )
    assert result.days_late == 1
    assert result.penalties == D("4.77")
    assert result.indemnity == FIXED_INDEMNITY_EUR


def test_several_payments_same_day_and_overpayment():
    # 1000 due 2024-03-31; 300 + 900 on 2024-04-10 (overpaid by 200)
    # 2024-04-01..04-10: 10 days on 1000 at 14.50: 1000 x 0.145 x 10 / 365 = 3.9726 -> 3.97
    result = compute_penalties(
        D("1000.00"),
        day(2024, 3, 31),
        [
            (day(2024, 4, 10), D("300.00")),
            (day(2024, 4, 10), D("900.00")),
            (day(2024, 5, 1), D("5")),
        ],
        RATES,
    )
    assert result.days_late == 10
    assert result.penalties == D("3.97")
    assert len(result.periods) == 1


def test_overpaid_before_due():
    result = compute_penalties(D("100.00"), day(2024, 3, 31), [(day(2024, 3, 1), D("150"))], RATES)
    assert (result.penalties, result.indemnity, result.days_late) == (0, 0, 0)


@pytest.mark.parametrize(
    ("consumer", "insolvency", "reason"), [(True, False, "consumer"), (False, True, "insolvency")]
)
def test_consumer_and_insolvency_owe_nothing(consumer, insolvency, reason):
    result = compute_penalties(
        D("12000.00"),
        day(2024, 5, 31),
        [(day(2024, 8, 30), D("12000.00"))],
        RATES,
        is_consumer=consumer,
        in_insolvency=insolvency,
    )
    assert result.penalties == 0
    assert result.indemnity == 0
    assert result.periods == []
    assert result.reason == reason
    assert result.days_late == 91


def test_open_invoice_requires_as_of():
    with pytest.raises(PenaltyError, match="as_of"):
        compute_penalties(D("100"), day(2024, 5, 31), [(day(2024, 6, 5), D("50"))], RATES)


def test_payments_after_as_of_are_ignored():
    full = compute_penalties(
        D("12000.00"), day(2024, 5, 31), [(day(2024, 8, 30), D("12000.00"))], RATES
    )
    early = compute_penalties(
        D("12000.00"),
        day(2024, 5, 31),
        [(day(2024, 8, 30), D("12000.00"))],
        RATES,
        as_of=day(2024, 6, 30),
    )
    assert early.days_late == 30
    assert early.penalties == D("143.01") == full.periods[0].interest


def test_negative_amounts_rejected():
    with pytest.raises(PenaltyError):
        compute_penalties(D("-1"), day(2024, 5, 31), [], RATES, as_of=day(2024, 6, 1))
    with pytest.raises(PenaltyError):
        compute_penalties(D("1"), day(2024, 5, 31), [(day(2024, 6, 1), D("-1"))], RATES)


# --- warning ----------------------------------------------------------------------------


def test_missing_current_rate_warning():
    warning = missing_current_rate_warning(RATES, day(2026, 11, 23))
    assert warning is not None
    assert "2026 H2" in warning and "2026-07-01" in warning and "2025-06-11" in warning
    # 2025 H2: the last change (2025-06-11) predates the 2025-07-01 reference day: warn too
    assert missing_current_rate_warning(RATES, day(2025, 11, 1)) is not None
    # a change within the current half-year: the table is up to date
    assert missing_current_rate_warning(RATES, day(2025, 6, 20)) is None
    # the user confirms the rate on the reference day
    confirmed = RateTable(
        [(e.kind, e.valid_from, e.rate) for e in RATES.entries()]
        + [("ecb", day(2026, 7, 1), D("2.15"))]
    )
    assert missing_current_rate_warning(confirmed, day(2026, 11, 23)) is None
    assert "No ECB rate" in missing_current_rate_warning(RateTable(), day(2026, 1, 1))


# --- properties -------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.01"), max_value=D("10000000"), places=2)
due_dates = st.dates(min_value=day(2024, 1, 1), max_value=day(2026, 6, 30))
offsets = st.integers(min_value=-60, max_value=500)
contract_rates = st.one_of(st.none(), st.decimals(min_value=D("0"), max_value=D("30"), places=2))


@st.composite
def invoices(draw):
    amount = draw(amounts)
    due = draw(due_dates)
    n = draw(st.integers(min_value=0, max_value=4))
    payments = [
        (
            due + dt.timedelta(days=draw(offsets)),
            draw(st.decimals(min_value=D("0.01"), max_value=amount, places=2)),
        )
        for _ in range(n)
    ]
    as_of = due + dt.timedelta(days=draw(st.integers(min_value=0, max_value=600)))
    return amount, due, payments, as_of, draw(contract_rates)


@settings(max_examples=150, deadline=None)
@given(invoices())
def test_never_negative_and_total_is_sum_of_periods(inv):
    amount, due, payments, as_of, rate = inv
    result = compute_penalties(amount, due, payments, RATES, as_of=as_of, contractual_rate=rate)
    assert result.penalties >= 0
    assert result.indemnity in (D("0"), D("40.00"))
    assert result.days_late >= 0
    assert result.penalties == sum((p.interest for p in result.periods), D(0))
    assert all(p.interest >= 0 and p.principal > 0 for p in result.periods)
    # contiguous periods from the day after the due date, each within one half-year
    expected_start = due + dt.timedelta(days=1)
    for p in result.periods:
        assert p.start == expected_start
        assert p.days == (p.end - p.start).days + 1 > 0
        assert half_year_start(p.start) == half_year_start(p.end)
        expected_start = p.end + dt.timedelta(days=1)
    assert sum(p.days for p in result.periods) == result.days_late
    assert (result.indemnity > 0) == (result.days_late > 0)


@settings(max_examples=100, deadline=None)
@given(amounts, due_dates, st.integers(min_value=-200, max_value=0), contract_rates)
def test_zero_when_paid_on_or_before_due(amount, due, offset, rate):
    paid_on = due + dt.timedelta(days=offset)
    result = compute_penalties(amount, due, [(paid_on, amount)], RATES, contractual_rate=rate)
    assert (result.penalties, result.indemnity, result.days_late, result.periods) == (0, 0, 0, [])


@settings(max_examples=100, deadline=None)
@given(
    amounts,
    due_dates,
    st.integers(min_value=1, max_value=500),
    st.integers(min_value=1, max_value=500),
    contract_rates,
)
def test_splitting_an_open_invoice_keeps_the_sum(amount, due, first, more, rate):
    # Penalties as of m, plus the accrual on the same principal from m+1 to T, equal the
    # penalties as of T up to one cent of rounding per period.
    m = due + dt.timedelta(days=first)
    t = m + dt.timedelta(days=more)
    whole = compute_penalties(amount, due, [], RATES, as_of=t, contractual_rate=rate)
    head = compute_penalties(amount, due, [], RATES, as_of=m, contractual_rate=rate)
    tail = accrue(amount, m + dt.timedelta(days=1), t, RATES, rate)
    split = head.penalties + sum((p.interest for p in tail), D(0))
    pieces = len(head.periods) + len(tail)
    assert abs(split - whole.penalties) <= D("0.01") * pieces
    assert sum(p.days for p in head.periods) + sum(p.days for p in tail) == whole.days_late


@settings(max_examples=100, deadline=None)
@given(invoices(), st.integers(min_value=1, max_value=400))
def test_more_days_late_never_less_penalties(inv, extra):
    amount, due, payments, as_of, rate = inv
    # the same open position computed later
    open_payments = [(d, p) for d, p in payments if d <= as_of]
    paid = sum((p for _, p in open_payments), D(0))
    if paid >= amount:
        open_payments = []
    sooner = compute_penalties(
        amount, due, open_payments, RATES, as_of=as_of, contractual_rate=rate
    )
    later = compute_penalties(
        amount,
        due,
        open_payments,
        RATES,
        as_of=as_of + dt.timedelta(days=extra),
        contractual_rate=rate,
    )
    assert later.days_late >= sooner.days_late
    assert later.penalties >= sooner.penalties
    # a full payment made later
    paid_sooner = compute_penalties(amount, due, [(as_of, amount)], RATES, contractual_rate=rate)
    paid_later = compute_penalties(
        amount, due, [(as_of + dt.timedelta(days=extra), amount)], RATES, contractual_rate=rate
    )
    assert paid_later.days_late == paid_sooner.days_late + extra
    assert paid_later.penalties >= paid_sooner.penalties
