"""Aging buckets: how overdue amounts are grouped by days past the due date.

Days overdue = as-of date - due date. An invoice due on the as-of day is not yet overdue
(it is "not due"). The default buckets are 1-30, 31-60, 61-90, 91-120 and over 120 days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class BucketError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Bucket:
    low: int  # first day overdue included
    high: int | None  # last day included; None: no upper bound

    @property
    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"

    @property
    def key(self) -> str:
        """Column-safe name, e.g. d1_30 or d121_plus."""
        return f"d{self.low}_plus" if self.high is None else f"d{self.low}_{self.high}"

    def due_date_range(self, as_of: dt.date) -> tuple[dt.date | None, dt.date]:
        """(earliest, latest) due dates falling in this bucket as of `as_of`."""
        latest = as_of - dt.timedelta(days=self.low)
        earliest = None if self.high is None else as_of - dt.timedelta(days=self.high)
        return earliest, latest


DEFAULT_SPEC = "1-30,31-60,61-90,91-120,121+"


def parse_buckets(spec: str = DEFAULT_SPEC) -> tuple[Bucket, ...]:
    """Parse "1-30,31-60,61-90,91-120,121+": contiguous, starting at day 1, open last bucket."""
    buckets: list[Bucket] = []
    expected_low = 1
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise BucketError("empty aging bucket specification")
    for i, part in enumerate(parts):
        try:
            if part.endswith("+"):
                low, high = int(part[:-1]), None
                if i != len(parts) - 1:
                    raise BucketError(f"open bucket {part!r} must be the last one")
            else:
                low_text, high_text = part.split("-")
                low, high = int(low_text), int(high_text)
        except ValueError as exc:
            raise BucketError(f"bad bucket {part!r}: expected 'LOW-HIGH' or 'LOW+'") from exc
        if low != expected_low or (high is not None and high < low):
            raise BucketError(
                f"bad bucket {part!r}: buckets must be contiguous from day 1 "
                f"(expected one starting at {expected_low})"
            )
        buckets.append(Bucket(low, high))
        expected_low = (high or 0) + 1
    if buckets[-1].high is not None:
        buckets.append(Bucket(expected_low, None))
    return tuple(buckets)
