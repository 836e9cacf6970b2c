"""French B2B late-payment penalties and the fixed recovery indemnity (pure, no IO).

Rules (Code de commerce, art. L441-10 II and D441-5):

* Penalties run from the day after the due date, without any reminder being necessary.
* Rate: without a contractual rate, the ECB main refinancing operations rate plus
  10 percentage points (the *statutory rate*). The ECB rate used for a calendar half-year
  is the one in force on its reference day: 1 January for January-June, 1 July for
  July-December.
* **Floor** (art. L441-10 II): a contractual rate may not be lower than 3 times the
  French legal interest rate (taux d'interet legal, creditor a professional, kind
  ``legal_pro``) of the same half-year; a lower contractual rate is raised to that floor.
* Simple interest per day on the amount still due, incl. VAT:
  ``principal x rate / 100 x days / 365`` (365 days even in leap years).
* A fixed indemnity of 40 EUR per invoice paid late (or still unpaid after its due date)
  is owed in addition. The indemnity is a fixed amount in euros, whatever the invoice
  currency.
* Consumers (B2C) and debtors in a collective insolvency procedure (sauvegarde,
  redressement, liquidation judiciaire): no penalties and no indemnity here (for
  consumers, late interest needs a formal notice; for insolvent debtors, the claim is
  declared to the mandataire judiciaire).
* Penalties and the indemnity are **not subject to VAT**.

Conventions of this module (also shown by the CLI):

* Days counting: the late days of an invoice are counted from the day after the due date
  **up to and including the payment day**; a payment therefore reduces the principal
  from the day *after* the payment day (the payment day itself is a late day on the old
  principal). Days late = date of full payment (or ``as_of`` when still open) - due date,
  0 when paid on or before the due date.
* Periods: a new period starts whenever the principal changes (the day after a late
  payment) and whenever the half-year changes (1 January, 1 July). Each period's
  interest is rounded half-up to the cent (the currency's minor unit); the total is the
  sum of the rounded periods.
* Payments made on or before the due date reduce the principal without penalty.
* Payments dated after ``as_of`` are ignored (the position as known on ``as_of``).
* Overpayment is allowed: the principal never goes below zero.

Reference rates are data (:class:`RateTable`), never constants in code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from encours.i18n import _
from encours.money import quantize

ECB = "ecb"
LEGAL_PRO = "legal_pro"
LEGAL_CONSUMER = "legal_consumer"
RATE_KINDS: tuple[str, ...] = (ECB, LEGAL_PRO, LEGAL_CONSUMER)

STATUTORY_MARGIN = Decimal("10")  # ECB + 10 percentage points
LEGAL_FLOOR_MULTIPLIER = Decimal("3")  # contractual rate >= 3 x legal interest rate
FIXED_INDEMNITY_EUR = Decimal("40.00")  # art. D441-5, per invoice paid late
DAYS_PER_YEAR = 365

REASON_CONSUMER = "consumer"
REASON_INSOLVENCY = "insolvency"

_ZERO = Decimal(0)
_CENT = Decimal("0.01")


class PenaltyError(ValueError):
    """Input that does not allow computing the penalties."""


class MissingRateError(PenaltyError):
    """No rate of `kind` is in force on the reference day of a half-year."""

    def __init__(self, kind: str, day: dt.date) -> None:
        self.kind = kind
        self.reference_day = half_year_start(day)
        self.half_year = half_year_label(day)
        super().__init__(
            _("no {kind} rate in force on {day} (reference day of {half_year})").format(
                kind=kind, day=self.reference_day.isoformat(), half_year=self.half_year
            )
        )


# --- half-years -------------------------------------------------------------------------


def half_year_start(d: dt.date) -> dt.date:
    """Reference day of d's half-year: 1 January (January-June) or 1 July (July-December)."""
    return dt.date(d.year, 1 if d.month <= 6 else 7, 1)


def next_half_year_start(d: dt.date) -> dt.date:
    """First day of the half-year following d's."""
    return dt.date(d.year, 7, 1) if d.month <= 6 else dt.date(d.year + 1, 1, 1)


def half_year_label(d: dt.date) -> str:
    """'2024 H1' or '2024 H2'."""
    return f"{d.year} H{1 if d.month <= 6 else 2}"


def _two_places(rate: Decimal) -> Decimal:
    """The same value shown with at least two decimals (14.5 -> 14.50)."""
    exponent = rate.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        return rate.quantize(_CENT)
    return rate


# --- rates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateEntry:
    kind: str
    valid_from: dt.date
    rate: Decimal  # percent per year


class RateTable:
    """Reference rates by kind, each in force from its `valid_from` until the next change.

    Built from ``(kind, valid_from, rate)`` tuples; kinds are ``ecb``, ``legal_pro`` and
    ``legal_consumer``; rates are percents per year (``Decimal("4.50")``). When the same
    (kind, valid_from) appears twice, the last one wins.
    """

    def __init__(self, entries: Iterable[tuple[str, dt.date, Decimal]] = ()) -> None:
        by_key: dict[tuple[str, dt.date], Decimal] = {}
        for kind, valid_from, rate in entries:
            if kind not in RATE_KINDS:
                raise PenaltyError(
                    _("unknown rate kind {kind!r} (expected one of {kinds})").format(
                        kind=kind, kinds=RATE_KINDS
                    )
                )
            if not isinstance(valid_from, dt.date) or isinstance(valid_from, dt.datetime):
                raise PenaltyError(
                    _("valid_from must be a date, got {value!r}").format(value=valid_from)
                )
            value = Decimal(rate)
            if not value.is_finite():
                raise PenaltyError(
                    _("rate must be a finite decimal, got {value!r}").format(value=rate)
                )
            by_key[(kind, valid_from)] = value
        self._by_kind: dict[str, list[RateEntry]] = {kind: [] for kind in RATE_KINDS}
        for (kind, valid_from), value in sorted(by_key.items()):
            self._by_kind[kind].append(RateEntry(kind, valid_from, value))

    def entries(self, kind: str | None = None) -> list[RateEntry]:
        """The entries of one kind (or of all kinds), by kind then date."""
        kinds = RATE_KINDS if kind is None else (kind,)
        return [e for k in kinds for e in self._by_kind.get(k, [])]

    def latest(self, kind: str) -> RateEntry | None:
        """The most recent entry of `kind` (whatever its date), or None."""
        entries = self._by_kind.get(kind, [])
        return entries[-1] if entries else None

    def rate_on(self, kind: str, day: dt.date) -> Decimal | None:
        """The rate of `kind` in force on `day` (most recent change on or before it)."""
        found = None
        for entry in self._by_kind.get(kind, []):
            if entry.valid_from > day:
                break
            found = entry.rate
        return found

    def half_year_rate(self, kind: str, d: dt.date) -> Decimal:
        """The rate of `kind` in force on the reference day of d's half-year."""
        rate = self.rate_on(kind, half_year_start(d))
        if rate is None:
            raise MissingRateError(kind, d)
        return rate

    def ecb_rate_for_half_year(self, d: dt.date) -> Decimal:
        """ECB refinancing rate in force on 1 January (Jan-Jun) or 1 July (Jul-Dec) of d."""
        return self.half_year_rate(ECB, d)

    def legal_rate_for_half_year(self, d: dt.date, *, consumer: bool = False) -> Decimal:
        """French legal interest rate of d's half-year (professional creditor by default)."""
        return self.half_year_rate(LEGAL_CONSUMER if consumer else LEGAL_PRO, d)

    def statutory_rate(self, d: dt.date) -> Decimal:
        """ECB rate of d's half-year + 10 percentage points."""
        return _two_places(self.ecb_rate_for_half_year(d) + STATUTORY_MARGIN)

    def penalty_rate(self, d: dt.date, contractual_rate: Decimal | None = None) -> Decimal:
        """Annual penalty rate (percent) applying on day d.

        Without a contractual rate: the statutory rate (ECB + 10 points). With one: the
        contractual rate, but never below 3 x the legal interest rate (``legal_pro``) of
        the same half-year (art. L441-10 II); a lower contractual rate is raised to it.
        """
        if contractual_rate is None:
            return self.statutory_rate(d)
        floor = LEGAL_FLOOR_MULTIPLIER * self.legal_rate_for_half_year(d)
        return _two_places(max(Decimal(contractual_rate), floor))


# --- computation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Days with the same principal and the same rate; `end` is inclusive."""

    start: dt.date
    end: dt.date
    days: int
    principal: Decimal  # amount still due during the period
    rate: Decimal  # percent per year
    interest: Decimal  # rounded half-up to the cent


@dataclass(frozen=True, slots=True)
class PenaltyResult:
    penalties: Decimal  # sum of the rounded period interests, not subject to VAT
    indemnity: Decimal  # fixed 40.00 EUR when paid (or still unpaid) after the due date
    days_late: int
    periods: list[Period] = field(default_factory=list)
    reason: str | None = None  # why nothing is owed although late (consumer, insolvency)
    currency: str = "EUR"  # of `penalties`; the indemnity is always in euros

    @property
    def total(self) -> Decimal:
        return self.penalties + self.indemnity


def _zero(currency: str) -> Decimal:
    return quantize(_ZERO, currency)


def _check_amount(value: Decimal, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        try:
            value = Decimal(value)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise PenaltyError(
                _("{what}: not a decimal amount: {value!r}").format(what=what, value=value)
            ) from exc
    if not value.is_finite():
        raise PenaltyError(
            _("{what}: not a finite amount: {value!r}").format(what=what, value=value)
        )
    if value < 0:
        raise PenaltyError(
            _("{what}: must not be negative, got {value}").format(what=what, value=value)
        )
    return value


def period_interest(principal: Decimal, rate: Decimal, days: int, currency: str = "EUR") -> Decimal:
    """``principal x rate/100 x days/365`` rounded half-up to the currency's minor unit."""
    with localcontext() as ctx:
        ctx.prec = 50
        exact = principal * rate * days / (100 * DAYS_PER_YEAR)
    return quantize(max(exact, _ZERO), currency)


def accrue(
    principal: Decimal,
    start: dt.date,
    end: dt.date,
    rates: RateTable,
    contractual_rate: Decimal | None = None,
    currency: str = "EUR",
) -> list[Period]:
    """Periods of interest on a constant `principal` from `start` to `end` inclusive.

    The span is cut at each half-year change (1 January, 1 July). Empty when
    ``end < start`` or when the principal is zero.
    """
    periods: list[Period] = []
    if end < start or principal <= 0:
        return periods
    day = start
    while day <= end:
        stop = min(end, next_half_year_start(day) - dt.timedelta(days=1))
        days = (stop - day).days + 1
        rate = rates.penalty_rate(day, contractual_rate)
        periods.append(
            Period(
                start=day,
                end=stop,
                days=days,
                principal=principal,
                rate=rate,
                interest=period_interest(principal, rate, days, currency),
            )
        )
        day = stop + dt.timedelta(days=1)
    return periods


def compute_penalties(
    amount: Decimal,
    due: dt.date,
    payments: list[tuple[dt.date, Decimal]],
    rates: RateTable,
    as_of: dt.date | None = None,
    contractual_rate: Decimal | None = None,
    is_consumer: bool = False,
    in_insolvency: bool = False,
    currency: str = "EUR",
) -> PenaltyResult:
    """Late-payment penalties and fixed indemnity of one invoice (see the module docstring).

    `amount` is the invoice amount incl. VAT; `payments` are (date, amount) pairs in any
    order. When the invoice is not fully paid (as of `as_of`), the periods run up to
    `as_of` inclusive, which is then required. Raises :class:`PenaltyError` on invalid
    input and :class:`MissingRateError` when a half-year's rate is not in `rates`.
    """
    amount = _check_amount(amount, _("amount"))
    if contractual_rate is not None:
        contractual_rate = Decimal(contractual_rate)
        if not contractual_rate.is_finite() or contractual_rate < 0:
            raise PenaltyError(
                _("contractual rate must be >= 0, got {rate}").format(rate=contractual_rate)
            )
    known: list[tuple[dt.date, Decimal]] = []
    for day, paid in payments:
        paid = _check_amount(paid, _("payment of {day}").format(day=day))
        if as_of is None or day <= as_of:
            known.append((day, paid))
    known.sort(key=lambda p: p[0])

    # Principal still due after the due date (payments on or before it carry no penalty).
    principal = amount - sum((p for d, p in known if d <= due), _ZERO)
    late = [(d, p) for d, p in known if d > due]

    # Principal changes: the payment day is a late day on the old principal, the new
    # principal applies from the day after.
    segments: list[tuple[dt.date, dt.date, Decimal]] = []  # (start, end incl., principal)
    start = due + dt.timedelta(days=1)
    paid_off: dt.date | None = due if principal <= 0 else None
    for day, paid in late:
        if principal <= 0:
            break
        if day >= start:
            segments.append((start, day, principal))
            start = day + dt.timedelta(days=1)
        principal -= paid
        if principal <= 0:
            paid_off = day
    if paid_off is None:
        if as_of is None:
            raise PenaltyError(_("the invoice is not fully paid: as_of is required"))
        segments.append((start, as_of, principal))
        days_late = max((as_of - due).days, 0)
    else:
        days_late = max((paid_off - due).days, 0)

    if days_late == 0:
        return PenaltyResult(_zero(currency), _zero("EUR"), 0, [], None, currency)
    if is_consumer or in_insolvency:
        reason = REASON_CONSUMER if is_consumer else REASON_INSOLVENCY
        return PenaltyResult(_zero(currency), _zero("EUR"), days_late, [], reason, currency)

    periods: list[Period] = []
    for seg_start, seg_end, seg_principal in segments:
        periods.extend(accrue(seg_principal, seg_start, seg_end, rates, contractual_rate, currency))
    penalties = sum((p.interest for p in periods), _zero(currency))
    return PenaltyResult(
        penalties=penalties,
        indemnity=FIXED_INDEMNITY_EUR,
        days_late=days_late,
        periods=periods,
        reason=None,
        currency=currency,
    )


__all__ = [
    "DAYS_PER_YEAR",
    "ECB",
    "FIXED_INDEMNITY_EUR",
    "LEGAL_CONSUMER",
    "LEGAL_FLOOR_MULTIPLIER",
    "LEGAL_PRO",
    "RATE_KINDS",
    "REASON_CONSUMER",
    "REASON_INSOLVENCY",
    "STATUTORY_MARGIN",
    "MissingRateError",
    "PenaltyError",
    "PenaltyResult",
    "Period",
    "RateEntry",
    "RateTable",
    "accrue",
    "compute_penalties",
    "half_year_label",
    "half_year_start",
    "next_half_year_start",
    "period_interest",
]
