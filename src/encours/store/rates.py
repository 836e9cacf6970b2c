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
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources

from sqlalchemy import Connection, func, insert, select, update

from encours.domain.penalties import (
    ECB,
    RATE_KINDS,
    RateTable,
    half_year_label,
    half_year_start,
)
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


def missing_current_rate_warning(table: RateTable, today: dt.date) -> str | None:
    """A warning when the ECB rate of today's half-year has not been confirmed, else None.

    Rule: the rate of a half-year is the one in force on its reference day (1 January or
    1 July). The table can only be trusted for it when it holds an ECB entry dated on or
    after that reference day (a rate change during the half-year, or the user confirming
    the rate with an entry dated on the reference day itself). So we warn when the most
    recent ECB entry is older than the start of the current half-year: e.g. with the last
    change on 2025-06-11, on 2026-11-23 the rate for 2026 H2 (reference day 2026-07-01)
    has not been confirmed. Legal interest rates are not checked.
    """
    reference_day = half_year_start(today)
    latest = table.latest(ECB)
    if latest is not None and latest.valid_from >= reference_day:
        return None
    label = half_year_label(today)
    hint = f"encours rates set ecb {reference_day.isoformat()} RATE"
    if latest is None:
        return (
            f"No ECB rate in the reference-rates table: the rate for {label} "
            f"(reference day {reference_day.isoformat()}) is unknown; enter it with `{hint}`."
        )
    return (
        f"The ECB rate for {label} (reference day {reference_day.isoformat()}) has not been "
        f"confirmed: the last entry is {latest.valid_from.isoformat()} ({latest.rate} %). "
        f"Check the ECB rate in force on {reference_day.isoformat()} and enter it with `{hint}`."
    )


__all__ = [
    "RateInputError",
    "RateRow",
    "check_rate",
    "ensure_seeded",
    "list_rates",
    "load_rate_table",
    "missing_current_rate_warning",
    "seed_reference_rates",
    "set_rate",
    "shipped_rates",
]
