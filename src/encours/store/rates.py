"""The reference-rates table (ECB refinancing rate, French legal interest rates).

The rates shipped with the product (`encours/data/reference_rates.csv`) are inserted when
the table is empty (and by `seed_reference_rates`, which only adds the missing rows);
later changes are entered by the user with `set_rate`, each one recorded in the audit log.
SQLAlchemy Core only, portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources

from sqlalchemy import Connection, func, insert, select, update

from encours.domain.penalties import (
    ECB,
    LEGAL_PRO,
    RATE_KINDS,
    RateTable,
    half_year_label,
    half_year_start,
)
from encours.i18n import N_, gettext
from encours.store.schema import AuditEntry, ReferenceRate

RATES = ReferenceRate.__table__
AUDIT = AuditEntry.__table__

SHIPPED_CSV = "reference_rates.csv"
MAX_RATE = Decimal(100)


class RateInputError(ValueError):
    """A rate, a kind or a date that cannot be stored."""


@dataclass(frozen=True, slots=True)
class RateRow:
    kind: str
    valid_from: dt.date
    rate: Decimal  # percent per year
    note: str | None = None

    def as_strings(self) -> dict[str, str]:
        """JSON-able view (decimal strings, ISO dates)."""
        return {
            "kind": self.kind,
            "valid_from": self.valid_from.isoformat(),
            "rate": str(self.rate),
            "note": self.note or "",
        }


def check_rate(rate: Decimal | str) -> Decimal:
    """A rate in percent per year: a finite decimal between 0 and 100."""
    try:
        value = Decimal(str(rate).strip().replace(",", "."))
    except InvalidOperation as exc:
        raise RateInputError(f"not a decimal rate: {rate!r} (expected e.g. 2.15)") from exc
    if not value.is_finite() or not (0 <= value <= MAX_RATE):
        raise RateInputError(f"rate {rate!r} out of range (expected a percent between 0 and 100)")
    return value


def shipped_rates() -> list[RateRow]:
    """The rows of the CSV shipped in the package (kind,valid_from,rate,note)."""
    text = resources.files("encours").joinpath("data", SHIPPED_CSV).read_text(encoding="utf-8")
    rows = []
    for line in csv.DictReader(io.StringIO(text)):
        rows.append(
            RateRow(
                kind=line["kind"].strip(),
                valid_from=dt.date.fromisoformat(line["valid_from"].strip()),
                rate=Decimal(line["rate"].strip()),
                note=(line.get("note") or "").strip() or None,
            )
        )
    return rows


def _is_empty(conn: Connection) -> bool:
    return conn.execute(select(func.count()).select_from(RATES)).scalar_one() == 0


def seed_reference_rates(conn: Connection) -> int:
    """Insert the shipped rows whose (kind, valid_from) is not in the table yet.

    Idempotent; never overwrites a rate the user changed. Returns the number inserted.
    """
    existing = {(k, vf) for k, vf in conn.execute(select(RATES.c.kind, RATES.c.valid_from))}
    missing = [r for r in shipped_rates() if (r.kind, r.valid_from) not in existing]
    if missing:
        conn.execute(
            insert(RATES),
            [
                {"kind": r.kind, "valid_from": r.valid_from, "rate": r.rate, "note": r.note}
                for r in missing
            ],
        )
    return len(missing)


def ensure_seeded(conn: Connection) -> None:
    """Seed the shipped rates when the table is empty."""
    if _is_empty(conn):
        seed_reference_rates(conn)


def list_rates(conn: Connection, kind: str | None = None) -> list[RateRow]:
    """Every rate (or those of one kind), by kind then date; seeds an empty table first."""
    ensure_seeded(conn)
    query = select(RATES.c.kind, RATES.c.valid_from, RATES.c.rate, RATES.c.note).order_by(
        RATES.c.kind, RATES.c.valid_from
    )
    if kind is not None:
        query = query.where(RATES.c.kind == kind)
    return [RateRow(k, vf, Decimal(r), n) for k, vf, r, n in conn.execute(query)]


def load_rate_table(conn: Connection) -> RateTable:
    """The rates as a domain `RateTable`; seeds an empty table first."""
    return RateTable((r.kind, r.valid_from, r.rate) for r in list_rates(conn))


def set_rate(
    conn: Connection,
    kind: str,
    valid_from: dt.date,
    rate: Decimal | str,
    actor: str,
    note: str | None = None,
) -> RateRow:
    """Insert or update the rate of `kind` from `valid_from`, and audit the change.

    The audit entry (action ``rate.set``, entity ``reference_rate``, key
    ``"{kind}:{valid_from}"``) keeps the row before (None when new) and after.
    """
    if kind not in RATE_KINDS:
        raise RateInputError(
            f"unknown rate kind {kind!r} (expected one of {', '.join(RATE_KINDS)})"
        )
    if not isinstance(valid_from, dt.date) or isinstance(valid_from, dt.datetime):
        raise RateInputError(f"valid_from must be a date, got {valid_from!r}")
    value = check_rate(rate)
    ensure_seeded(conn)  # a first manual rate must not prevent seeding the shipped ones
    key = (RATES.c.kind == kind) & (RATES.c.valid_from == valid_from)
    current = conn.execute(select(RATES.c.rate, RATES.c.note).where(key)).first()
    if current is None:
        before = None
        after = RateRow(kind, valid_from, value, note)
        conn.execute(insert(RATES).values(kind=kind, valid_from=valid_from, rate=value, note=note))
    else:
        before = RateRow(kind, valid_from, Decimal(current.rate), current.note)
        after = RateRow(kind, valid_from, value, note if note is not None else current.note)
        conn.execute(update(RATES).where(key).values(rate=value, note=after.note))
    conn.execute(
        insert(AUDIT).values(
            actor=actor,
            action="rate.set",
            entity="reference_rate",
            entity_key=f"{kind}:{valid_from.isoformat()}",
            before=None if before is None else before.as_strings(),
            after=after.as_strings(),
        )
    )
    return after


_ECB_UNKNOWN = N_(
    "No ECB rate in the reference-rates table: the rate for {label} "
    "(reference day {day}) is unknown; enter it with `{hint}`."
)
_ECB_UNCONFIRMED = N_(
    "The ECB rate for {label} (reference day {day}) has not been confirmed: the last "
    "entry is {last} ({rate} %). Check the ECB rate in force on {day} and enter it "
    "with `{hint}`."
)
_LEGAL_MISSING = N_(
    "No legal interest rate entered for {label} (reference day {day}): the 3x legal-rate "
    "floor uses the latest known rate ({rate} %, in force since {last}). Enter the rate of "
    "{label} with `{hint}`."
)
Translate = Callable[[str], str]


def missing_current_rate_warning(
    table: RateTable, today: dt.date, translate: Translate | None = None
) -> str | None:
    """A warning when the ECB rate of today's half-year has not been confirmed, else None.

    Rule: the rate of a half-year is the one in force on its reference day (1 January or
    1 July). The table can only be trusted for it when it holds an ECB entry dated on or
    after that reference day (a rate change during the half-year, or the user confirming
    the rate with an entry dated on the reference day itself). So we warn when the most
    recent ECB entry is older than the start of the current half-year: e.g. with the last
    change on 2025-06-11, on 2026-11-23 the rate for 2026 H2 (reference day 2026-07-01)
    has not been confirmed. Legal interest rates are not checked (see
    `penalty_rate_warnings`).
    """
    return missing_ecb_rate_warning(table, today, translate)


def missing_ecb_rate_warning(
    table: RateTable, day: dt.date, translate: Translate | None = None
) -> str | None:
    """The warning of `missing_current_rate_warning` for the half-year of any `day`: the ECB
    rate of a half-year is confirmed when the table holds an ECB entry dated on or after its
    reference day (earlier half-years are then settled too). `translate`: the gettext of
    the reader's language (default: the current language)."""
    tr = translate or gettext
    reference_day = half_year_start(day)
    latest = table.latest(ECB)
    if latest is not None and latest.valid_from >= reference_day:
        return None
    label = half_year_label(day)
    hint = f"encours rates set ecb {reference_day.isoformat()} RATE"
    if latest is None:
        return tr(_ECB_UNKNOWN).format(label=label, day=reference_day.isoformat(), hint=hint)
    return tr(_ECB_UNCONFIRMED).format(
        label=label,
        day=reference_day.isoformat(),
        last=latest.valid_from.isoformat(),
        rate=latest.rate,
        hint=hint,
    )


def missing_legal_rate_warning(
    table: RateTable, day: dt.date, translate: Translate | None = None
) -> str | None:
    """A warning when the legal interest rate (professional creditor) of day's half-year
    has not been entered: the legal rate is set for each half-year, dated on its reference
    day; without that entry the 3x legal-rate floor of a contractual penalty rate uses the
    latest rate known on the reference day (None when there is none at all: the
    computation then fails with MissingRateError)."""
    reference_day = half_year_start(day)
    known = [e for e in table.entries(LEGAL_PRO) if e.valid_from <= reference_day]
    if not known or known[-1].valid_from == reference_day:
        return None
    latest = known[-1]
    return (translate or gettext)(_LEGAL_MISSING).format(
        label=half_year_label(day),
        day=reference_day.isoformat(),
        rate=latest.rate,
        last=latest.valid_from.isoformat(),
        hint=f"encours rates set legal {reference_day.isoformat()} RATE",
    )


def penalty_rate_warnings(
    table: RateTable, period_starts: Iterable[dt.date], *, contractual: bool
) -> list[str]:
    """The warnings about the rates behind penalty periods starting on `period_starts`
    (each period lies within one half-year): the statutory rate (no contractual rate)
    needs the ECB rate of each half-year confirmed (`missing_ecb_rate_warning`); a
    contractual rate is floored at 3x the legal rate of each half-year
    (`missing_legal_rate_warning`). One warning per half-year, oldest first."""
    check = missing_legal_rate_warning if contractual else missing_ecb_rate_warning
    warnings = []
    for reference_day in sorted({half_year_start(d) for d in period_starts}):
        warning = check(table, reference_day)
        if warning is not None:
            warnings.append(warning)
    return warnings


__all__ = [
    "RateInputError",
    "RateRow",
    "check_rate",
    "ensure_seeded",
    "list_rates",
    "load_rate_table",
    "missing_current_rate_warning",
    "missing_ecb_rate_warning",
    "missing_legal_rate_warning",
    "penalty_rate_warnings",
    "seed_reference_rates",
    "set_rate",
    "shipped_rates",
]
