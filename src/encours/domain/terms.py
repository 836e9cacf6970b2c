"""Payment terms (délais de paiement) and due dates.

Code de commerce art. L441-10: when nothing is agreed, payment is due 30 days after the
receipt of the goods or the service; the agreed term may not exceed 60 days from the invoice
date, or 45 days end of month (« 45 jours fin de mois »).

Due-date conventions (the same in `PaymentTerms.due_date` and the vectorised `due_dates`):

* net N days ("30 days net", "net 30", "30 jours"): issue date + N calendar days;
* N days end of month ("45 jours fin de mois", "45 days EOM"): issue date + N days, then the
  last day of the month reached — the most common French reading, accepted by the DGCCRF;
* N days end of month on the d-th ("30 jours fin de mois le 10"): the end-of-month date
  above, then the d-th of the following month (clamped to that month's last day, so "le 31"
  gives the 30th in a 30-day month);
* cash ("comptant", "à réception", "immediate"): 0 days net, due on the issue date.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from encours.i18n import _


class TermsError(ValueError):
    """Payment terms that cannot be understood or are out of range."""


_EXPECTED = (
    "expected e.g. '30 days net', 'net 30', '45 days end of month', '45 jours FDM', "
    "'30 jours fin de mois le 10', '60 jours date de facture' or 'comptant'"
)
_MAX_DAYS = 999
_LEGAL_MAX_NET = 60
_LEGAL_MAX_END_OF_MONTH = 45

_CASH = {
    "cash",
    "immediate",
    "immediat",
    "comptant",
    "paiement comptant",
    "a reception",
    "a reception de facture",
    "paiement a reception",
    "payable a reception",
    "on receipt",
    "upon receipt",
    "due on receipt",
}
_EOM = r"(?:end\ of\ (?:the\ )?month|eom|fin\ de\ mois|fdm)"  # escaped: used in re.VERBOSE
_TERMS_RE = re.compile(
    rf"""
    (?:nets?\s+)?
    (?:(?P<eom_before>{_EOM})\s+)?
    (?P<days>\d{{1,3}})\s*(?:days?|d|jours?|j)?
    (?:\s+nets?)?
    (?:\s+(?:date\ de\ facturation|date\ de\ facture|date\ d\ emission
            |(?:from\ |after\ )?(?:the\ )?invoice\ date))?
    (?:\s+(?P<eom_after>{_EOM}))?
    (?:\s+(?:le|the|on\ the|on)\s+(?P<dom>\d{{1,2}})(?:st|nd|rd|th|er|e)?)?
    """,
    re.VERBOSE,
)


def _normalize(text: str) -> str:
    """Casefold, strip accents and punctuation, collapse spaces: 'À  Réception.' -> 'a reception'"""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[-_.,;:/'’()]", " ", ascii_text).split())


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class PaymentTerms:
    """Agreed payment terms: `days` after the issue date, optionally end of month.

    `day_of_month` (only with `end_of_month`) moves the due date to that day of the month
    following the end-of-month date ("30 jours fin de mois le 10").
    """

    days: int
    end_of_month: bool
    day_of_month: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int):
            raise TermsError(
                _("payment terms days must be an int, got {value!r}").format(value=self.days)
            )
        if not 0 <= self.days <= _MAX_DAYS:
            raise TermsError(
                _("payment terms of {days} days: expected 0 to {max} days").format(
                    days=self.days, max=_MAX_DAYS
                )
            )
        if self.day_of_month is not None:
            if not self.end_of_month:
                raise TermsError(
                    _("a day of month ('le 10') is only allowed with end of month terms")
                )
            if not 1 <= self.day_of_month <= 31:
                raise TermsError(
                    _("day of month {day}: expected 1 to 31").format(day=self.day_of_month)
                )

    @classmethod
    def parse(cls, text: str) -> PaymentTerms:
        """Parse English or French terms, case-, accent- and space-insensitive.

        >>> PaymentTerms.parse("45 jours FDM")
        PaymentTerms(days=45, end_of_month=True, day_of_month=None)
        """
        if not isinstance(text, str):
            raise TermsError(
                _("payment terms must be text, got {value!r}; {expected}").format(
                    value=text, expected=_(_EXPECTED)
                )
            )
        norm = _normalize(text)
        if re.search(r"-\s*\d", text):
            raise TermsError(
                _("negative payment terms {value!r}: {expected}").format(
                    value=text, expected=_(_EXPECTED)
                )
            )
        if norm in _CASH:
            return cls(0, False)
        if re.fullmatch(_EOM, norm):
            return cls(0, True)
        match = _TERMS_RE.fullmatch(norm)
        if match is None or (match["eom_before"] and match["eom_after"]):
            raise TermsError(
                _("unknown payment terms {value!r}: {expected}").format(
                    value=text, expected=_(_EXPECTED)
                )
            )
        end_of_month = bool(match["eom_before"] or match["eom_after"])
        dom = int(match["dom"]) if match["dom"] else None
        return cls(int(match["days"]), end_of_month, dom)

    def due_date(self, issue: date) -> date:
        """Due date of an invoice issued on `issue` (conventions in the module docstring).

        Net: issue + days. End of month: issue + days, then the last day of that month.
        With `day_of_month` d: then the d-th of the following month (clamped to its last day).
        """
        due = issue + timedelta(days=self.days)
        if not self.end_of_month:
            return due
        due = _month_end(due)
        if self.day_of_month is None:
            return due
        next_month = due + timedelta(days=1)
        return next_month.replace(day=min(self.day_of_month, _month_end(next_month).day))

    def exceeds_legal_maximum(self) -> bool:
        """More than 60 days net, or more than 45 days end of month (L441-10).

        With a day of month, the days after the end of the month count too (conservative):
        "30 jours fin de mois le 10" is 40 days end of month (allowed), "45 ... le 10" exceeds.
        """
        if not self.end_of_month:
            return self.days > _LEGAL_MAX_NET
        return self.days + (self.day_of_month or 0) > _LEGAL_MAX_END_OF_MONTH

    def __str__(self) -> str:
        """Canonical English text, accepted back by `parse`: '45 days end of month'."""
        unit = "day" if self.days == 1 else "days"
        if not self.end_of_month:
            return "cash" if self.days == 0 else f"{self.days} {unit} net"
        text = f"{self.days} {unit} end of month"
        return text if self.day_of_month is None else f"{text} the {_ordinal(self.day_of_month)}"


DEFAULT_TERMS = PaymentTerms(30, False)
"""L441-10 default when nothing is agreed: 30 days."""


def due_dates(issue_dates: pl.Series, terms: pl.Series) -> pl.Series:
    """Vectorised `PaymentTerms.due_date`: one Date per row, same conventions.

    Each distinct terms text is parsed once (there are few), joined back to the rows, and the
    dates are computed with polars date arithmetic — no per-row Python loop. A null issue
    date or null terms give a null due date (use `terms.fill_null(str(DEFAULT_TERMS))` to apply
    the legal default). Raises TermsError listing every distinct text that cannot be parsed.
    """
    if len(issue_dates) != len(terms):
        raise ValueError(f"length mismatch: {len(issue_dates)} issue dates, {len(terms)} terms")
    if issue_dates.dtype != pl.Date:
        raise TypeError(f"issue dates must be a Date series, got {issue_dates.dtype}")
    texts = terms.cast(pl.String)
    parsed: dict[str, PaymentTerms] = {}
    bad: list[str] = []
    for text in texts.drop_nulls().unique().to_list():
        try:
            parsed[text] = PaymentTerms.parse(text)
        except TermsError:
            bad.append(text)
    if bad:
        shown = ", ".join(repr(t) for t in sorted(bad)[:20])
        if len(bad) > 20:
            shown = _("{shown} (and {count} more)").format(shown=shown, count=len(bad) - 20)
        raise TermsError(
            _("unknown payment terms: {values}; {expected}").format(
                values=shown, expected=_(_EXPECTED)
            )
        )

    table = pl.DataFrame(
        {
            "terms": list(parsed),
            "days": [t.days for t in parsed.values()],
            "eom": [t.end_of_month for t in parsed.values()],
            "dom": [t.day_of_month for t in parsed.values()],
        },
        schema={"terms": pl.String, "days": pl.Int32, "eom": pl.Boolean, "dom": pl.Int32},
    )
    rows = pl.DataFrame({"issue": issue_dates, "terms": texts}).join(
        table, on="terms", how="left", maintain_order="left"
    )
    net = pl.col("issue") + pl.duration(days=pl.col("days"))
    month_end = net.dt.month_end()
    next_first = month_end.dt.offset_by("1d")
    on_day = pl.min_horizontal(
        next_first + pl.duration(days=pl.col("dom") - 1), next_first.dt.month_end()
    )
    due = (
        pl.when(pl.col("dom").is_not_null())
        .then(on_day)
        .when(pl.col("eom"))
        .then(month_end)
        .otherwise(net)
    )
    return rows.select(due.alias("due_date")).to_series()
