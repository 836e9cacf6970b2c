"""Expected credit loss on trade receivables (IFRS 9 simplified approach, §5.5.15 and
B5.5.35: lifetime expected losses through a provision matrix).

1. The open invoices at each of the month-ends of the last `months` months (replayed as
   of each month-end with `store.positions.open_invoices`, one set-based query a month),
   put in aging buckets (not due, 1-30, 31-60, ...) as of that month-end.
2. Roll rate of bucket k = sum over month-ends m of what those invoices of bucket k at m
   still owed at the next month-end / sum of their open amounts at m (capped at 1): the
   share that rolled on to the next bucket instead of being paid. The month-end
   `customer_snapshots` keep only bucket totals, and the last bucket is a stock that
   also holds older debts, so bucket-total ratios overstate the roll into it; following
   the same invoices from one month-end to the next does not.
3. Loss rate of bucket k = roll_k x roll_k+1 x ... x roll_(last-1) x LGD: the share of
   an amount in bucket k that reaches the last bucket (default, e.g. over 120 days past
   due), of which LGD (loss given default, policy, 100 % by default) is lost. Loss rates
   are rounded to 6 decimals.
4. Provision of a bucket = its amount as of the day x its loss rate (half-up to the cent).
   Doubtful accounts are taken out of the matrix and provided individually: open
   receivables x the rate set on the customer (`customer_profiles.doubtful_rate`, percent),
   100 % for a customer in insolvency proceedings without a rate.
The history keeps the doubtful accounts (their losses are the experience the rates
measure). Per currency. Forward-looking adjustments are left to the user (the LGD parameter).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection

from encours.analytics.kpis import month_back
from encours.analytics.snapshots import month_ends
from encours.domain.aging import DEFAULT_SPEC, Bucket, parse_buckets
from encours.money import from_minor, quantize
from encours.store.frames import query_frame
from encours.store.positions import aging_by_customer, open_invoices

RATE_PLACES = Decimal("0.000001")


@dataclass
class EclMatrix:
    currency: str
    month_ends: list[dt.date]
    rows: list[dict] = field(
        default_factory=list
    )  # bucket, amount, roll_rate, loss_rate, provision
    individual: list[dict] = field(default_factory=list)  # customer, open, rate, provision

    @property
    def matrix_provision(self) -> Decimal:
        return sum((r["provision"] for r in self.rows), Decimal(0))

    @property
    def individual_provision(self) -> Decimal:
        return sum((r["provision"] for r in self.individual), Decimal(0))

    @property
    def total_provision(self) -> Decimal:
        return self.matrix_provision + self.individual_provision

    def as_dict(self) -> dict:
        def clean(row: dict) -> dict:
            return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}

        return {
            "currency": self.currency,
            "month_ends": [d.isoformat() for d in self.month_ends],
            "matrix": [clean(r) for r in self.rows],
            "individual": [clean(r) for r in self.individual],
            "matrix_provision": str(self.matrix_provision),
            "individual_provision": str(self.individual_provision),
            "total_provision": str(self.total_provision),
        }


def _keys(buckets: tuple[Bucket, ...]) -> list[str]:
    return ["not_due"] + [b.key for b in buckets]


def _bucket_of(day: dt.date, buckets: tuple[Bucket, ...]) -> pl.Expr:
    """Index of the aging bucket of each invoice as of `day` (0: not due, k: buckets[k-1])."""
    days = (pl.lit(day) - pl.col("due_date")).dt.total_days()
    expr: Any = pl.when(days <= 0).then(0)
    for k, bucket in enumerate(buckets, start=1):
        cond = (
            days >= bucket.low if bucket.high is None else days.is_between(bucket.low, bucket.high)
        )
        expr = expr.when(cond).then(k)
    return expr.otherwise(len(buckets)).alias("bucket")


def _history(conn: Connection, days: list[dt.date], buckets: tuple[Bucket, ...]) -> pl.DataFrame:
    """Per currency and bucket: `start` = sum over month-ends m of the amounts in the
    bucket at m, `rolled` = sum of what of those same invoices was still unpaid at m+1.
    One query of open invoices per month-end (`store.positions.open_invoices`)."""
    parts = []
    previous: tuple[dt.date, pl.DataFrame] | None = None
    for day in days:
        frame = open_invoices(conn, day).select("currency", "issue_date", "due_date",
                                                "open_minor")  # fmt: skip
        if previous is not None:
            prev_day, prev = previous
            parts.append(
                prev.with_columns(_bucket_of(prev_day, buckets))
                .group_by("currency", "bucket")
                .agg(start=pl.col("open_minor").sum(), rolled=pl.lit(0))
            )
            parts.append(frame.filter(pl.col("issue_date") <= prev_day).with_columns(
                _bucket_of(prev_day, buckets)).group_by("currency", "bucket").agg(
                start=pl.lit(0), rolled=pl.col("open_minor").sum()))  # fmt: skip
        previous = (day, frame)
    schema = pl.Schema(
        {"currency": pl.String, "bucket": pl.Int64, "start": pl.Int64, "rolled": pl.Int64}
    )
    if not parts:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat([p.cast(schema) for p in parts])
        .group_by("currency", "bucket")
        .agg(pl.col("start").sum(), pl.col("rolled").sum())
    )


def _doubtful(conn: Connection) -> pl.DataFrame:
    sql = """
        SELECT c.id AS customer_id, c.code, c.in_insolvency, p.doubtful_rate
        FROM customers c LEFT JOIN customer_profiles p ON p.customer_id = c.id
        WHERE c.in_insolvency = :yes OR p.doubtful_rate IS NOT NULL
    """
    return query_frame(conn, sql, {"customer_id": pl.Int64, "code": pl.String,
                                   "in_insolvency": pl.Boolean, "doubtful_rate": pl.String},
                       {"yes": True})  # fmt: skip


def expected_credit_loss(
    conn: Connection,
    as_of: dt.date,
    *,
    months: int = 12,
    buckets: tuple[Bucket, ...] | None = None,
    lgd: Decimal = Decimal(1),
) -> list[EclMatrix]:
    """The provision matrix and individual provisions per currency (module docstring)."""
    buckets = buckets or parse_buckets(DEFAULT_SPEC)
    keys = _keys(buckets)
    doubtful = _doubtful(conn)
    exclude = doubtful["customer_id"]
    history_days = month_ends(month_back(as_of, months), as_of)
    history = _history(conn, history_days, buckets)
    current_aging = aging_by_customer(conn, as_of, buckets)
    current = current_aging.filter(~pl.col("customer_id").is_in(exclude.implode())).group_by(
        "currency").agg([pl.col(f"{k}_minor").sum().alias(k) for k in keys])  # fmt: skip

    currencies = sorted(set(current["currency"].to_list()) | set(history["currency"].to_list()))
    results = []
    for currency in currencies:
        flows = {r["bucket"]: r for r in history.filter(pl.col("currency") == currency)
                 .iter_rows(named=True)}  # fmt: skip
        rolls: list[Decimal] = []
        for k in range(len(keys) - 1):
            start, rolled = (flows[k]["start"], flows[k]["rolled"]) if k in flows else (0, 0)
            rolls.append(min(Decimal(rolled) / Decimal(start), Decimal(1)) if start else
                         Decimal(0))  # fmt: skip
        now = current.filter(pl.col("currency") == currency)
        matrix = EclMatrix(currency, history_days)
        for k, key in enumerate(keys):
            loss = lgd
            for roll in rolls[k:]:
                loss *= roll
            loss = loss.quantize(RATE_PLACES, ROUND_HALF_UP)
            amount = from_minor(int(now[key].sum()) if now.height else 0, currency)
            label = "not due" if key == "not_due" else buckets[k - 1].label
            matrix.rows.append({
                "bucket": label, "amount": amount,
                "roll_rate": rolls[k].quantize(RATE_PLACES, ROUND_HALF_UP)
                if k < len(rolls) else None,
                "loss_rate": loss, "provision": quantize(amount * loss, currency),
            })  # fmt: skip
        open_by_customer = current_aging.filter(
            (pl.col("currency") == currency) & pl.col("customer_id").is_in(exclude.implode())
        )
        for row in doubtful.join(open_by_customer, on="customer_id").iter_rows(named=True):
            rate = Decimal(row["doubtful_rate"]) if row["doubtful_rate"] else Decimal(100)
            amount = from_minor(row["invoices_open_minor"], currency)
            matrix.individual.append({
                "customer": row["code"], "open": amount, "rate_percent": rate,
                "provision": quantize(amount * rate / 100, currency),
            })  # fmt: skip
        results.append(matrix)
    return results


def set_doubtful(
    conn: Connection, customer_code: str, rate_percent: Decimal | None, actor: str
) -> None:
    """Mark a customer's receivables doubtful, provided individually at `rate_percent`
    (None: no longer doubtful). Audited."""
    from sqlalchemy import select, update

    from encours.risk.limits import audit, find_customer
    from encours.store.risk_schema import CustomerProfile

    if rate_percent is not None and not Decimal(0) <= rate_percent <= Decimal(100):
        raise ValueError("the provision rate is a percentage between 0 and 100")
    customer = find_customer(conn, customer_code)
    table = CustomerProfile.__table__
    before = conn.execute(select(table.c.doubtful_rate).where(
        table.c.customer_id == customer["id"])).first()  # fmt: skip
    value = None if rate_percent is None else str(rate_percent)
    if before is None:
        conn.execute(table.insert().values(customer_id=customer["id"], doubtful_rate=value))
    else:
        conn.execute(update(table).where(table.c.customer_id == customer["id"]).values(
            doubtful_rate=value))  # fmt: skip
    audit(conn, actor, "doubtful", "customer", customer_code,
          {"doubtful_rate": None if before is None or before[0] is None else str(before[0])},
          {"doubtful_rate": value})  # fmt: skip
