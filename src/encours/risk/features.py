"""Point-in-time features of invoices for the late-payment model.

Every feature of an invoice is computed as of its *cutoff* day (the prediction day: its
issue date for training rows, the `--as-of` day for open invoices scored later) and uses
only what was known before that day:

- the customer's history counts only invoices SETTLED STRICTLY BEFORE the cutoff
  (settlement date = date of the allocation that brought the invoice's open amount to zero);
- the customer's open and overdue invoices at the cutoff are counted from invoices issued
  strictly before it, minus those settled strictly before it (the invoice itself excluded);
- the segment and portfolio priors are the same cumulative statistics over all customers
  of the segment, or all customers;
- the risk-class prior is the same statistic over the invoices of the customers that had
  the same risk class (`risk_assessments`, each settled invoice counted with the class its
  customer had before its settlement day), for a customer whose latest assessment before
  the cutoff gives it a class. A new customer without history falls back explicitly to its
  class prior (enough history: MIN_SEGMENT_HISTORY invoices), else its segment's, else the
  portfolio's (`prior_source` says which).

All of it is set-based: per-day cumulative sums per customer, then `join_asof` (backward,
exact matches excluded) of each invoice's cutoff into them. No loop over invoices.

Target: `delay_days` = settlement - due date (signed), `days_late` = max(delay_days, 0),
`late` = delay_days > 0.

Disputes: an invoice with disputes recorded in encours (table `disputes`, dated) is
disputed on a cutoff day when one of them was opened on or before it and not resolved
before it. Known limit: an invoice without such a record keeps the ledger's *current*
`disputed` flag (imported files such as the IBM sample carry no dispute date), so for those
the feature is as of the ledger's last state, not the cutoff (see docs/model.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection

from encours.store.frames import query_frame

# Pseudo-count of the shrinkage of a customer's own rates towards its prior.
PRIOR_WEIGHT = 3.0
# A segment's statistics replace the portfolio's as a prior from this many settled invoices.
MIN_SEGMENT_HISTORY = 30
RECENT_WINDOW = 5

FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_vs_customer_avg",
    "terms_days",
    "disputed",
    "electronic",
    "paperless_customer",
    "paperless_days",
    "issue_month",
    "issue_weekday",
    "issue_day_of_month",
    "has_history",
    "hist_count",
    "hist_late_rate",
    "hist_days_late",
    "hist_delay",
    "hist_delay_std",
    "hist_recent_days_late",
    "hist_last_days_late",
    "days_since_last_settlement",
    "hist_days_to_settle",
    "open_count",
    "open_amount_ratio",
    "overdue_count",
    "overdue_share",
    "prior_late_rate",
    "prior_days_late",
    "late_rate_shrunk",
    "days_late_shrunk",
    "class_prior_late_rate",
    "class_prior_days_late",
)

INVOICE_SCHEMA = {
    "document_id": pl.Int64, "number": pl.String, "customer_id": pl.Int64,
    "currency": pl.String, "issue_date": pl.Date, "due_date": pl.Date,
    "amount_minor": pl.Int64, "disputed": pl.Boolean, "channel": pl.String,
}  # fmt: skip


ASSESSMENT_SCHEMA = {"customer_id": pl.Int64, "as_of": pl.Date, "risk_class": pl.String}
DISPUTE_SCHEMA = {"document_id": pl.Int64, "opened_on": pl.Date, "resolved_on": pl.Date}


@dataclass(frozen=True)
class Ledger:
    """What the model reads of the ledger.

    invoices: document_id, number, customer_id, currency, issue_date, due_date,
    amount_minor, disputed, channel, settled_date (null: open as of the ledger's end).
    customers: customer_id, code, segment, paperless_date.
    allocations: invoice_id, date, amount_minor (summed per invoice and day).
    assessments: customer_id, as_of, risk_class (the history of risk classes; optional).
    disputes: document_id, opened_on, resolved_on (disputes recorded in encours; optional).
    """

    invoices: pl.DataFrame
    customers: pl.DataFrame
    allocations: pl.DataFrame
    assessments: pl.DataFrame | None = None
    disputes: pl.DataFrame | None = None

    @property
    def last_day(self) -> dt.date | None:
        dates = [self.invoices["issue_date"].max(), self.invoices["settled_date"].max()]
        known = [d for d in dates if d is not None]
        return max(known) if known else None  # type: ignore[return-value]


def daily_allocations(allocations: pl.DataFrame) -> pl.DataFrame:
    """invoice_id, date, amount_minor: summed per invoice and day, sorted by both."""
    return (
        allocations.group_by("invoice_id", "date")
        .agg(pl.col("amount_minor").sum())
        .sort("invoice_id", "date")
    )


def settlement_dates(
    invoices: pl.DataFrame, allocations: pl.DataFrame, *, daily: bool = False
) -> pl.DataFrame:
    """Per invoice: the date its allocations first reach its amount (null: still open).

    `allocations` has invoice_id, date, amount_minor (several rows per day allowed), or is
    already `daily_allocations` (`daily=True`).
    """
    amounts = invoices.select(pl.col("document_id").alias("invoice_id"), "amount_minor")
    days = allocations if daily else daily_allocations(allocations)
    # running total per invoice over the sorted rows: the global running total minus the
    # one before the invoice's first row (no per-group window)
    total = pl.col("amount_minor").cum_sum()
    first = pl.col("invoice_id") != pl.col("invoice_id").shift(1)
    running = (
        days.with_columns(base=pl.when(first.fill_null(True)).then(total - pl.col("amount_minor")))
        .with_columns(cumulative=total - pl.col("base").forward_fill())
        .select("invoice_id", "date", "cumulative")
        .join(amounts, on="invoice_id")
        .filter(pl.col("cumulative") >= pl.col("amount_minor"))
        .group_by("invoice_id")
        .agg(pl.col("date").min().alias("settled_date"))
    )
    return invoices.join(
        running.rename({"invoice_id": "document_id"}), on="document_id", how="left"
    )


def load_ledger(conn: Connection) -> Ledger:
    """The invoices (not cancelled) with their settlement date, and the customers."""
    invoices = query_frame(
        conn,
        """SELECT id AS document_id, number, customer_id, currency, issue_date, due_date,
                  amount_minor, disputed, channel
           FROM documents WHERE kind = 'invoice' AND status <> 'cancelled'""",
        INVOICE_SCHEMA,
    )
    # the rows as they are, summed per invoice and day by polars (faster than SQLite)
    allocations = daily_allocations(
        query_frame(
            conn,
            "SELECT invoice_id, date, amount_minor FROM allocations WHERE invoice_id IS NOT NULL",
            {"invoice_id": pl.Int64, "date": pl.Date, "amount_minor": pl.Int64},
        )
    )
    customers = query_frame(
        conn,
        "SELECT id AS customer_id, code, segment, paperless_date FROM customers",
        {"customer_id": pl.Int64, "code": pl.String, "segment": pl.String,
         "paperless_date": pl.Date},
    )  # fmt: skip
    assessments = query_frame(
        conn, "SELECT customer_id, as_of, risk_class FROM risk_assessments",
        ASSESSMENT_SCHEMA,
    )  # fmt: skip
    disputes = query_frame(
        conn, "SELECT document_id, opened_on, resolved_on FROM disputes", DISPUTE_SCHEMA
    )
    return Ledger(settlement_dates(invoices, allocations, daily=True), customers, allocations,
                  assessments, disputes)  # fmt: skip


def with_targets(invoices: pl.DataFrame) -> pl.DataFrame:
    """Adds delay_days (signed), days_late (>= 0) and late (null while open)."""
    delay = (pl.col("settled_date") - pl.col("due_date")).dt.total_days()
    return invoices.with_columns(
        delay_days=delay, days_late=delay.clip(lower_bound=0), late=delay > 0
    )


def _asof(
    rows: pl.DataFrame, events: pl.DataFrame, on: str, by: str | None, suffix: str
) -> pl.DataFrame:
    """Attach to each row the cumulative columns of `events` as of the day before its
    cutoff (events dated strictly before the cutoff)."""
    renamed = events.rename(
        {c: f"{c}{suffix}" for c in events.columns if c not in (on, by)} | {on: "_event_day"}
    ).sort("_event_day")
    return rows.join_asof(
        renamed,
        left_on="cutoff",
        right_on="_event_day",
        by=by,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).drop("_event_day")


def _cumulative(frame: pl.DataFrame, day: str, by: list[str], sums: dict[str, pl.Expr]):
    """Per (by, day): the sums of the day, then their running totals over the days."""
    daily = frame.group_by(*by, day).agg(**sums).sort(*by, day)
    names = list(sums)
    if by:
        return daily.with_columns(pl.col(n).cum_sum().over(by) for n in names)
    return daily.with_columns(pl.col(n).cum_sum() for n in names)


def _disputed_at_cutoff(ledger: Ledger, base: pl.DataFrame) -> pl.DataFrame:
    """document_id, cutoff, disputed_pit: for invoices with dated disputes, whether one was
    open on the cutoff (opened on or before it, not resolved before it); null otherwise."""
    disputes = ledger.disputes
    if disputes is None or disputes.is_empty():
        return base.select("document_id", "cutoff").with_columns(
            disputed_pit=pl.lit(None, dtype=pl.Boolean)
        )
    open_on_cutoff = (pl.col("opened_on") <= pl.col("cutoff")) & (
        pl.col("resolved_on").is_null() | (pl.col("resolved_on") > pl.col("cutoff"))
    )
    dated = (
        base.select("document_id", "cutoff")
        .join(disputes.select("document_id", "opened_on", "resolved_on"), on="document_id")
        .group_by("document_id", "cutoff")
        .agg(disputed_pit=open_on_cutoff.any())
    )
    return base.select("document_id", "cutoff").join(
        dated, on=["document_id", "cutoff"], how="left"
    )


def _class_at(frame: pl.DataFrame, assessments: pl.DataFrame, day: str, name: str) -> pl.DataFrame:
    """Adds `name`: the customer's risk class of its latest assessment strictly before
    the row's `day` (null: none)."""
    right = assessments.select(
        "customer_id", pl.col("as_of").alias("_assessed"), pl.col("risk_class").alias(name)
    ).sort("_assessed")
    return frame.sort(day).join_asof(
        right, left_on=day, right_on="_assessed", by="customer_id", strategy="backward",
        allow_exact_matches=False, check_sortedness=False,
    ).drop("_assessed")  # fmt: skip


def compute_features(ledger: Ledger, rows: pl.DataFrame) -> pl.DataFrame:
    """Features of `rows` (document_id, cutoff), each as of its own cutoff day.

    Returns document_id, cutoff and the FEATURES columns (floats), plus `prior_source`
    (class | segment | portfolio | none) telling which prior a customer without history
    gets.
    """
    inv = with_targets(ledger.invoices).join(
        ledger.customers.select("customer_id", "segment", "paperless_date"),
        on="customer_id",
        how="left",
    )
    base = rows.select("document_id", "cutoff").join(inv, on="document_id", how="inner")

    settled_all = inv.filter(pl.col("settled_date").is_not_null()).with_columns(
        to_settle=(pl.col("settled_date") - pl.col("issue_date")).dt.total_days(),
        late_i=pl.col("late").cast(pl.Int64),
    )
    # A customer's own features read only its own invoices: the per-customer running sums
    # are built for the customers of `rows` only (a few hundred when the monitor scores
    # its large open invoices, instead of the whole ledger). The priors read everyone.
    if base["customer_id"].n_unique() < ledger.customers.height // 2:
        own = pl.col("customer_id").is_in(base["customer_id"].unique().implode())
        inv = inv.filter(own)
        settled = settled_all.filter(own)
    else:
        settled = settled_all
    # --- the customer's history: invoices settled strictly before the cutoff -----------
    history = _cumulative(
        settled,
        "settled_date",
        ["customer_id"],
        {
            "n": pl.len(),
            "n_late": pl.col("late_i").sum(),
            "sum_days_late": pl.col("days_late").sum(),
            "sum_delay": pl.col("delay_days").sum(),
            "sum_delay2": (pl.col("delay_days").cast(pl.Float64) ** 2).sum(),
            "sum_to_settle": pl.col("to_settle").sum(),
            "settled_amount": pl.col("amount_minor").sum(),
            "settled_overdue_n": (pl.col("due_date") < pl.col("settled_date")).sum(),
        },
    )
    recent = (
        settled.sort("customer_id", "settled_date", "due_date", "document_id")
        .with_columns(
            recent_days_late=pl.col("days_late")
            .cast(pl.Float64)
            .rolling_mean(RECENT_WINDOW, min_samples=1)
            .over("customer_id"),
        )
        .group_by("customer_id", "settled_date")
        .agg(
            pl.col("recent_days_late").last(),
            pl.col("days_late").last().alias("last_days_late"),
        )
    )
    history = history.join(recent, on=["customer_id", "settled_date"]).with_columns(
        last_settled=pl.col("settled_date")
    )
    # --- invoices issued before the cutoff, and those overdue at it ---------------------
    issued = _cumulative(
        inv, "issue_date", ["customer_id"],
        {"n_issued": pl.len(), "issued_amount": pl.col("amount_minor").sum()},
    )  # fmt: skip
    fell_due = _cumulative(inv, "due_date", ["customer_id"], {"n_due": pl.len()})
    # Settled invoices that were overdue-then-settled or settled-then-due: they stop
    # counting as overdue from max(due, settled).
    closed = _cumulative(
        settled.with_columns(closed_date=pl.max_horizontal("due_date", "settled_date")),
        "closed_date", ["customer_id"], {"n_closed": pl.len()},
    )  # fmt: skip
    # --- priors: the same history over the segment and over the portfolio ---------------
    prior_sums = {
        "n": pl.len(),
        "n_late": pl.col("late_i").sum(),
        "sum_days_late": pl.col("days_late").sum(),
    }
    segment_history = _cumulative(
        settled_all.filter(pl.col("segment").is_not_null()), "settled_date", ["segment"],
        prior_sums,
    )  # fmt: skip
    portfolio_history = _cumulative(settled_all, "settled_date", [], prior_sums)
    assessments = ledger.assessments
    if assessments is None:
        assessments = pl.DataFrame(schema=ASSESSMENT_SCHEMA)
    classed = _class_at(
        settled_all.select("customer_id", "settled_date", "late_i", "days_late"), assessments,
        "settled_date", "risk_class",
    ).filter(pl.col("risk_class").is_not_null())  # fmt: skip
    class_history = _cumulative(classed, "settled_date", ["risk_class"], prior_sums)

    f = base.sort("cutoff")
    f = _asof(f, history, "settled_date", "customer_id", "_h")
    f = _asof(f, issued, "issue_date", "customer_id", "")
    f = _asof(f, fell_due, "due_date", "customer_id", "")
    f = _asof(f, closed, "closed_date", "customer_id", "")
    f = _asof(f.sort("cutoff"), segment_history, "settled_date", "segment", "_s")
    f = _asof(f.sort("cutoff"), portfolio_history, "settled_date", None, "_p")
    f = _class_at(f, assessments, "cutoff", "risk_class")
    f = _asof(f.sort("cutoff"), class_history, "settled_date", "risk_class", "_c")
    f = f.join(_disputed_at_cutoff(ledger, base), on=["document_id", "cutoff"], how="left")

    zero = ["n_h", "n_late_h", "sum_days_late_h", "sum_delay_h", "sum_delay2_h",
            "sum_to_settle_h", "settled_amount_h", "n_issued", "issued_amount", "n_due",
            "n_closed", "n_s", "n_late_s", "sum_days_late_s", "n_p", "n_late_p",
            "sum_days_late_p", "n_c", "n_late_c", "sum_days_late_c"]  # fmt: skip
    f = f.with_columns(pl.col(c).fill_null(0) for c in zero)

    n = pl.col("n_h").cast(pl.Float64)
    has_history = pl.col("n_h") > 0
    # The invoice itself: issued / still open / overdue before its cutoff (prediction rows).
    self_issued = (pl.col("issue_date") < pl.col("cutoff")).cast(pl.Int64)
    self_open = self_issued * (
        pl.col("settled_date").is_null() | (pl.col("settled_date") >= pl.col("cutoff"))
    ).cast(pl.Int64)
    self_overdue = (pl.col("due_date") < pl.col("cutoff")).cast(pl.Int64) * self_open
    open_count = pl.col("n_issued") - pl.col("n_h") - self_open
    open_amount = (
        pl.col("issued_amount") - pl.col("settled_amount_h") - self_open * pl.col("amount_minor")
    )
    overdue_count = pl.col("n_due") - pl.col("n_closed") - self_overdue
    others_issued = pl.col("n_issued") - self_issued
    others_amount = pl.col("issued_amount") - self_issued * pl.col("amount_minor")
    avg_amount = pl.when(others_issued > 0).then(others_amount / others_issued)

    use_class = pl.col("n_c") >= MIN_SEGMENT_HISTORY
    use_segment = pl.col("n_s") >= MIN_SEGMENT_HISTORY
    class_late = pl.when(use_class).then(pl.col("n_late_c") / pl.col("n_c"))
    class_days = pl.when(use_class).then(pl.col("sum_days_late_c") / pl.col("n_c"))
    prior_late = (
        pl.when(use_class)
        .then(class_late)
        .when(use_segment)
        .then(pl.col("n_late_s") / pl.col("n_s"))
        .when(pl.col("n_p") > 0)
        .then(pl.col("n_late_p") / pl.col("n_p"))
    )
    prior_days = (
        pl.when(use_class)
        .then(class_days)
        .when(use_segment)
        .then(pl.col("sum_days_late_s") / pl.col("n_s"))
        .when(pl.col("n_p") > 0)
        .then(pl.col("sum_days_late_p") / pl.col("n_p"))
    )
    paperless = pl.col("paperless_date").is_not_null() & (
        pl.col("paperless_date") < pl.col("cutoff")
    )
    mean_delay = pl.col("sum_delay_h") / n
    out = f.with_columns(
        log_amount=(pl.col("amount_minor").cast(pl.Float64) + 1).log(),
        amount_vs_customer_avg=(pl.col("amount_minor") / avg_amount).fill_null(1.0),
        terms_days=(pl.col("due_date") - pl.col("issue_date")).dt.total_days(),
        disputed=pl.coalesce("disputed_pit", "disputed").cast(pl.Float64),
        electronic=(pl.col("channel") == "electronic").fill_null(False).cast(pl.Float64),
        paperless_customer=paperless.cast(pl.Float64),
        paperless_days=pl.when(paperless)
        .then((pl.col("cutoff") - pl.col("paperless_date")).dt.total_days())
        .otherwise(0),
        issue_month=pl.col("issue_date").dt.month(),
        issue_weekday=pl.col("issue_date").dt.weekday(),
        issue_day_of_month=pl.col("issue_date").dt.day(),
        has_history=has_history.cast(pl.Float64),
        hist_count=n,
        hist_late_rate=pl.when(has_history).then(pl.col("n_late_h") / n),
        hist_days_late=pl.when(has_history).then(pl.col("sum_days_late_h") / n),
        hist_delay=pl.when(has_history).then(mean_delay),
        hist_delay_std=pl.when(pl.col("n_h") > 1).then(
            (pl.col("sum_delay2_h") / n - mean_delay**2).clip(lower_bound=0).sqrt()
        ),
        hist_recent_days_late=pl.col("recent_days_late_h"),
        hist_last_days_late=pl.col("last_days_late_h").cast(pl.Float64),
        days_since_last_settlement=(pl.col("cutoff") - pl.col("last_settled_h")).dt.total_days(),
        hist_days_to_settle=pl.when(has_history).then(pl.col("sum_to_settle_h") / n),
        open_count=open_count,
        open_amount_ratio=pl.when(avg_amount > 0).then(open_amount / avg_amount).otherwise(0.0),
        overdue_count=overdue_count,
        overdue_share=pl.when(open_count > 0).then(overdue_count / open_count).otherwise(0.0),
        prior_late_rate=prior_late,
        prior_days_late=prior_days,
        class_prior_late_rate=class_late,
        class_prior_days_late=class_days,
        prior_source=pl.when(use_class)
        .then(pl.lit("class"))
        .when(use_segment)
        .then(pl.lit("segment"))
        .when(pl.col("n_p") > 0)
        .then(pl.lit("portfolio"))
        .otherwise(pl.lit("none")),
    )
    # New customers fall back to their prior explicitly; known ones are shrunk towards it.
    shrink = PRIOR_WEIGHT / (n + PRIOR_WEIGHT)
    out = out.with_columns(
        late_rate_shrunk=(
            (pl.col("n_late_h") + PRIOR_WEIGHT * pl.col("prior_late_rate")) / (n + PRIOR_WEIGHT)
        ),
        days_late_shrunk=(1 - shrink) * pl.col("hist_days_late").fill_null(0)
        + shrink * pl.col("prior_days_late"),
    )
    return out.select(
        "document_id", "cutoff", "prior_source", *[pl.col(c).cast(pl.Float64) for c in FEATURES]
    ).sort("document_id")
