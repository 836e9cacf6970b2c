"""Daily monitoring: alerts raised over the whole portfolio at once, deduplicated, assigned.

Run it every morning, then send the digest (cron, as the user owning the installation)::

    15 6 * * * cd /srv/encours && .venv/bin/encours monitor && .venv/bin/encours alerts digest

Rules (thresholds in `Thresholds`; defaults overridable by the environment
`ENCOURS_MONITOR_<FIELD>` e.g. `ENCOURS_MONITOR_NEW_OVERDUE_AMOUNT=5000`, then by the CLI
options). Every rule is one set-based computation over all customers (SQL + polars):

- `limit_exceeded`: exposure (`analytics.portfolio.customer_positions`) > credit limit, in
  the customer's currency. Critical when the limit is 0 or exposure > limit x
  `limit_critical_ratio` (1.2).
- `new_overdue`: invoices that became overdue since the previous monitor run (due date in
  [previous run day, as-of day); no previous run: due the day before; the window reaches
  back at most `lookback_days`) whose open amount >= `new_overdue_amount` (10,000.00 in the
  invoice's currency).
- `dso_worsened`: the customer's count-back DSO (the formula and inputs of
  `analytics.kpis.customer_kpis`, see `customer_dso`) up by at least `dso_increase_days`
  (15) vs `dso_compare_days` (30) days earlier. Customers with neither receivables nor
  sales on the earlier day are not compared. Critical from twice the threshold.
- `broken_promise`: promises with status 'broken', found broken (settled_on, else the
  promised date) in the last `lookback_days`.
- `class_downgraded`: the latest risk assessment (made in the last `lookback_days`) has a
  worse class than its `previous_class`. Critical when the new class is risky (D, E).
- `review_overdue`: the latest assessment's review date < as-of day.
- `large_order`: an order check recorded in the last `lookback_days` (`record_order_check`)
  for an amount >= `large_order_amount` while the customer was in a risky class (D, E).
- `predicted_late`: open invoices not yet due, open amount >= `large_invoice_amount`, with
  p_late >= `p_late` (0.7) by the stored payment model (`risk.model`). Overdue invoices are
  not predicted (they are late already: `new_overdue`). Without a trained model the rule is
  skipped and the run says so.

Deduplication: each alert has a key (kind + customer + currency, or the invoice, promise,
assessment, review date or order check it is about); at most one alert per key is not
closed. A run that finds the condition again:

- of an open alert: updates it (last_seen, severity, figures, title); no new alert;
- of an acknowledged alert: only moves last_seen, unless the condition WORSENED, in which
  case the acknowledged alert is closed and a new open alert is raised. Worsened = the
  severity went up (info < warning < critical), or, for the amounts (limit overrun, open
  amount of an invoice, promise or order), the amount grew by at least `worsen_ratio` (20 %)
  since the acknowledgement, or the DSO increase grew by another `dso_increase_days`.

Conditions that hold over time (`limit_exceeded`, `dso_worsened`, `review_overdue`,
`predicted_late`) are closed by the first run that no longer finds them. Events
(`new_overdue`, `broken_promise`, `class_downgraded`, `large_order`) stay open until
acknowledged; an acknowledged event is closed once it is older than the lookback window.

Assignment: the customer's collector for collection matters (`new_overdue`,
`broken_promise`, `dso_worsened`, `predicted_late`), the account owner for credit matters
(the others), each falling back on the other one; unassigned when the customer has neither.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from sqlalchemy import Connection, bindparam, func, inspect, select, update

from encours.analytics.kpis import LOOKBACK_MONTHS, count_back_dso, period_boundaries
from encours.domain.aging import DEFAULT_SPEC, parse_buckets
from encours.i18n import _, current_language
from encours.locale_format import format_money
from encours.money import MoneyError, to_minor
from encours.risk.classes import CLASSES, reviews_due
from encours.store import bulk, positions
from encours.store.alerts_schema import ALERT_KINDS, Alert, MonitorRun, OrderCheck
from encours.store.frames import query_frame
from encours.store.outbox_schema import TimelineEvent
from encours.store.schema import AuditEntry, Customer

if TYPE_CHECKING:
    from encours.risk.features import Ledger
    from encours.risk.model import FittedModel
    from encours.risk.order_check import OrderDecision

ALERTS = Alert.__table__
RUNS = MonitorRun.__table__
ORDER_CHECKS = OrderCheck.__table__

CONDITION_KINDS = ("limit_exceeded", "dso_worsened", "review_overdue", "predicted_late")
EVENT_KINDS = ("new_overdue", "broken_promise", "class_downgraded", "large_order")
COLLECTOR_KINDS = ("new_overdue", "broken_promise", "dso_worsened", "predicted_late")
AMOUNT_KINDS = ("limit_exceeded", "new_overdue", "broken_promise", "large_order")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

RAW_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(),
    "kind": pl.String(),
    "severity": pl.String(),
    "key": pl.String(),
    "metric": pl.Int64(),
    "details": pl.String(),
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- thresholds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """The monitoring policy. Amounts are in each document's currency."""

    new_overdue_amount: Decimal = Decimal("10000.00")
    dso_increase_days: Decimal = Decimal(15)
    dso_compare_days: int = 30
    large_invoice_amount: Decimal = Decimal("10000.00")
    p_late: Decimal = Decimal("0.7")
    large_order_amount: Decimal = Decimal("10000.00")
    risky_classes: tuple[str, ...] = ("D", "E")
    lookback_days: int = 30
    worsen_ratio: Decimal = Decimal("0.2")
    limit_critical_ratio: Decimal = Decimal("1.2")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Thresholds:
        """Defaults overridden by ENCOURS_MONITOR_<FIELD> (e.g. ENCOURS_MONITOR_P_LATE)."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"ENCOURS_MONITOR_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = _parse(f.name, raw)
        return cls(**values)

    def with_overrides(self, **overrides: object) -> Thresholds:
        """A copy with the given values (None: keep), strings parsed like the environment."""
        values: dict[str, Any] = {}
        for name, value in overrides.items():
            if value is None:
                continue
            values[name] = _parse(name, value) if isinstance(value, str) else value
        return replace(self, **values)

    def as_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _parse(name: str, raw: str) -> object:
    kind = {f.name: f.type for f in fields(Thresholds)}.get(name)
    if kind is None:
        raise ValueError(f"unknown threshold {name!r}")
    text = raw.strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not a whole number") from None
    if kind == "tuple[str, ...]":
        return tuple(v.strip().upper() for v in text.split(",") if v.strip())
    try:
        value = Decimal(text.replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise ValueError(f"{name}: {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name}: {raw!r} is not a positive number")
    return value


# --- helpers ------------------------------------------------------------------------------


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)


def _currency_threshold(frame: pl.DataFrame, amount: Decimal, column: str = "currency") -> pl.Expr:
    """The threshold in minor units of each row's currency (one value per currency)."""
    mapping = {}
    for currency in frame.get_column(column).unique().drop_nulls().to_list():
        try:
            mapping[currency] = to_minor(amount, currency)
        except MoneyError:  # an unknown code: 2 decimals, as most currencies
            mapping[currency] = int(amount * 100)
    return pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Int64)


def _details(*columns: str | pl.Expr) -> pl.Expr:
    return pl.struct(*columns).struct.json_encode().alias("details")


def _raw(frame: pl.DataFrame, kind: str, key: pl.Expr, severity: pl.Expr | str,
         metric: pl.Expr, details: pl.Expr) -> pl.DataFrame:  # fmt: skip
    if frame.is_empty():
        return _empty()
    sev = pl.lit(severity) if isinstance(severity, str) else severity
    return frame.select(
        pl.col("customer_id").cast(pl.Int64),
        pl.lit(kind).alias("kind"),
        sev.alias("severity"),
        key.alias("key"),
        metric.cast(pl.Int64).alias("metric"),
        details,
    )


def _ratio(value: Decimal) -> tuple[int, int]:
    num, den = value.as_integer_ratio()
    return int(num), int(den)


def _class_rank(column: str) -> pl.Expr:
    return pl.col(column).replace_strict(
        {c: i for i, c in enumerate(CLASSES)}, default=None, return_dtype=pl.Int64
    )


@dataclass
class _Context:
    conn: Connection
    as_of: dt.date
    thresholds: Thresholds
    window_start: dt.date
    kinds: tuple[str, ...] = ALERT_KINDS
    _open: pl.DataFrame | None = None
    _positions: pl.DataFrame | None = None
    _cache: dict = field(default_factory=dict)

    @property
    def lookback_start(self) -> dt.date:
        """Events on days after this one are within the lookback window."""
        return self.as_of - dt.timedelta(days=self.thresholds.lookback_days)

    def positions(self) -> pl.DataFrame:
        """The customers' positions as of the day (computed once per run), as
        `analytics.portfolio.customer_positions` gives them, from the open invoices the
        run reads anyway (`open_invoices`): the ledger is scanned once, not twice."""
        if self._positions is None:
            self._positions = positions_from_open_invoices(
                self.conn, self.as_of, self.open_invoices()
            )
        return self._positions

    def open_invoices(self) -> pl.DataFrame:
        """`store.positions.open_invoices` as of the day (computed once per run)."""
        if self._open is None:
            self._open = positions.open_invoices(self.conn, self.as_of)
        return self._open

    def model(self) -> FittedModel | None:
        """The stored payment model valid on the day (read once per run)."""
        if "model" not in self._cache:
            from encours.risk.model import load_model

            self._cache["model"] = load_model(self.conn, self.as_of)
        return self._cache["model"]

    def predicted_candidates(self) -> pl.DataFrame:
        """Open invoices not yet due, large enough for the `predicted_late` rule."""
        frame = self.open_invoices()
        threshold = _currency_threshold(frame, self.thresholds.large_invoice_amount)
        return frame.filter(
            (pl.col("due_date") >= self.as_of) & (pl.col("open_minor") >= threshold)
        )

    def ledger_is_read(self) -> bool:
        """Whether this run reads the whole ledger anyway (`predicted_late` will score)."""
        return (
            "predicted_late" in self.kinds
            and not self.predicted_candidates().is_empty()
            and self.model() is not None
        )

    def ledger(self) -> Ledger:
        """`risk.features.load_ledger` (read once per run)."""
        if "ledger" not in self._cache:
            from encours.risk.features import load_ledger

            self._cache["ledger"] = load_ledger(self.conn)
        return self._cache["ledger"]


def positions_from_open_invoices(
    conn: Connection, as_of: dt.date, open_invoices: pl.DataFrame
) -> pl.DataFrame:
    """Per customer and currency: the columns of `customer_positions` the monitor reads
    (invoices_open_minor, unapplied cash and credit, balance, exposure, the customer's
    currency and credit limit), from `store.positions.open_invoices` of the same day and
    `store.positions.unapplied_by_customer`: the same figures without a second scan of the
    invoices (checked against `customer_positions` in the tests)."""
    aging = open_invoices.group_by("customer_id", "currency").agg(
        open_invoices=pl.len(), invoices_open_minor=pl.col("open_minor").sum()
    )
    unapplied = positions.unapplied_by_customer(conn, as_of)
    frame = aging.join(unapplied, on=["customer_id", "currency"], how="full", coalesce=True)
    minor = ["open_invoices", "invoices_open_minor", "unapplied_cash_minor",
             "unapplied_credit_minor"]  # fmt: skip
    frame = frame.with_columns(pl.col(c).fill_null(0) for c in minor).with_columns(
        balance_minor=pl.col("invoices_open_minor")
        - pl.col("unapplied_cash_minor")
        - pl.col("unapplied_credit_minor")
    )
    customers = positions.customers_frame(conn).select(
        "customer_id", "code", "customer_currency", "credit_limit_minor"
    )
    return frame.join(customers, on="customer_id", how="left").with_columns(
        exposure_minor=pl.col("balance_minor").clip(lower_bound=0)
    )


# --- rules --------------------------------------------------------------------------------


def rule_limit_exceeded(ctx: _Context) -> pl.DataFrame:
    frame = ctx.positions().filter(
        pl.col("credit_limit_minor").is_not_null()
        & (pl.col("currency") == pl.col("customer_currency"))
        & (pl.col("exposure_minor") > pl.col("credit_limit_minor"))
    )
    num, den = _ratio(ctx.thresholds.limit_critical_ratio)
    critical = (pl.col("credit_limit_minor") == 0) | (
        pl.col("exposure_minor") * den > pl.col("credit_limit_minor") * num
    )
    excess = pl.col("exposure_minor") - pl.col("credit_limit_minor")
    return _raw(
        frame, "limit_exceeded",
        pl.format("limit_exceeded:{}:{}", "customer_id", "currency"),
        pl.when(critical).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        excess,
        _details("currency", "exposure_minor", pl.col("credit_limit_minor").alias("limit_minor"),
                 excess.alias("excess_minor")),
    )  # fmt: skip


def rule_new_overdue(ctx: _Context) -> pl.DataFrame:
    frame = ctx.open_invoices()
    frame = frame.filter(
        (pl.col("due_date") >= ctx.window_start)
        & (pl.col("due_date") < ctx.as_of)
        & (pl.col("open_minor") >= _currency_threshold(frame, ctx.thresholds.new_overdue_amount))
    )
    return _raw(
        frame, "new_overdue", pl.format("new_overdue:{}", "document_id"), "warning",
        pl.col("open_minor"),
        _details("document_id", "number", "currency", "due_date", "amount_minor", "open_minor",
                 "days_overdue"),
    )  # fmt: skip


def invoice_sales(conn: Connection, after: dt.date, until: dt.date) -> pl.DataFrame:
    """The invoices (not cancelled) issued in (after, until]: customer, currency, day,
    amount. Rows, not sums: SQLite sums them slower than polars does."""
    sql = """
        SELECT customer_id, currency, issue_date, amount_minor FROM documents
        WHERE kind = 'invoice' AND status <> 'cancelled' AND issue_date > :after
          AND issue_date <= :until
    """
    schema = {"customer_id": pl.Int64, "currency": pl.String, "issue_date": pl.Date,
              "amount_minor": pl.Int64}  # fmt: skip
    return query_frame(conn, sql, schema, {"after": after, "until": until})


def customer_dso(day: dt.date, open_by_customer: pl.DataFrame, sales: pl.DataFrame) -> pl.DataFrame:
    """Count-back DSO of every customer on `day`, as `analytics.kpis.customer_kpis` computes
    it: the same formula (`kpis.count_back_dso`) on the same inputs (receivables = open
    invoices, `invoices_open_minor` of `customer_positions`; sales = invoices issued in each
    of the 12 monthly periods, from `invoice_sales` covering them). The monitor needs the
    DSO only, not the settlement statistics the full KPI query computes."""
    bounds = period_boundaries(day)
    n = LOOKBACK_MONTHS
    sales_cols = [f"s{k}" for k in range(n)]
    issued = pl.col("issue_date")
    per_customer = (
        sales.filter((issued > bounds[n]) & (issued <= bounds[0]))
        .group_by("customer_id", "currency")
        .agg(
            pl.col("amount_minor").filter((issued > bounds[k + 1]) & (issued <= bounds[k]))
            .sum().alias(f"s{k}")
            for k in range(n)
        )
    )  # fmt: skip
    frame = per_customer.join(
        open_by_customer.select("customer_id", "currency", "invoices_open_minor"),
        on=["customer_id", "currency"], how="full", coalesce=True,
    ).fill_null(0)  # fmt: skip
    if frame.is_empty():
        return pl.DataFrame(schema={"customer_id": pl.Int64, "currency": pl.String,
                                    "dso": pl.Float64})  # fmt: skip
    days = np.array([(bounds[k] - bounds[k + 1]).days for k in range(n)])
    matrix = frame.select(sales_cols).to_numpy().astype(np.float64).reshape(-1, n)
    dso = count_back_dso(frame["invoices_open_minor"].to_numpy(), matrix, days)
    values = pl.Series("dso", dso, dtype=pl.Float64).fill_nan(None).round(1)
    return frame.select("customer_id", "currency").with_columns(values)


def rule_dso_worsened(ctx: _Context) -> pl.DataFrame:
    t = ctx.thresholds
    before = ctx.as_of - dt.timedelta(days=t.dso_compare_days)
    # one read of the sales covering both days' 12 periods; from the ledger when the run
    # reads it anyway for `predicted_late` (the same invoices: not cancelled)
    after = period_boundaries(before)[-1]
    if ctx.ledger_is_read():
        issued = pl.col("issue_date")
        sales = (
            ctx.ledger()
            .invoices.filter((issued > after) & (issued <= ctx.as_of))
            .select("customer_id", "currency", "issue_date", "amount_minor")
        )
    else:
        sales = invoice_sales(ctx.conn, after, ctx.as_of)
    now = customer_dso(ctx.as_of, ctx.positions(), sales)
    # the earlier day's receivables only: the aging pass of `customer_positions`
    then_open = positions.aging_by_customer(ctx.conn, before, parse_buckets(DEFAULT_SPEC))
    then = customer_dso(before, then_open, sales)
    then = then.rename({"dso": "dso_before"})
    increase = float(t.dso_increase_days)
    frame = (
        now.join(then, on=["customer_id", "currency"], how="inner")
        .with_columns(increase=(pl.col("dso") - pl.col("dso_before")).round(1))
        .filter(pl.col("increase").is_not_null() & (pl.col("increase") >= increase))
        .with_columns(compared_with=pl.lit(before))
    )
    return _raw(
        frame, "dso_worsened", pl.format("dso_worsened:{}:{}", "customer_id", "currency"),
        pl.when(pl.col("increase") >= 2 * increase).then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        (pl.col("increase") * 10).round(0),
        _details("currency", "dso", "dso_before", "increase", "compared_with"),
    )  # fmt: skip


def rule_broken_promise(ctx: _Context) -> pl.DataFrame | str:
    if not inspect(ctx.conn).has_table("promises"):
        return "no promises table"
    sql = """
        SELECT id AS promise_id, customer_id, made_on, promised_date, amount_minor, currency,
               COALESCE(settled_on, promised_date) AS broken_on
        FROM promises
        WHERE status = 'broken' AND COALESCE(settled_on, promised_date) > :since
          AND COALESCE(settled_on, promised_date) <= :as_of
    """
    schema = {"promise_id": pl.Int64, "customer_id": pl.Int64, "made_on": pl.Date,
              "promised_date": pl.Date, "amount_minor": pl.Int64, "currency": pl.String,
              "broken_on": pl.Date}  # fmt: skip
    frame = query_frame(ctx.conn, sql, schema, {"since": ctx.lookback_start, "as_of": ctx.as_of})
    return _raw(
        frame, "broken_promise", pl.format("broken_promise:{}", "promise_id"), "warning",
        pl.col("amount_minor"),
        _details("promise_id", "currency", "amount_minor", "made_on", "promised_date",
                 "broken_on"),
    )  # fmt: skip


def _latest_assessments(ctx: _Context) -> pl.DataFrame:
    sql = """
        SELECT a.customer_id, a.as_of AS assessed_on, a.risk_class, a.previous_class
        FROM risk_assessments a
        JOIN (SELECT customer_id, MAX(as_of) AS as_of FROM risk_assessments
              WHERE as_of <= :as_of GROUP BY customer_id) m
          ON m.customer_id = a.customer_id AND m.as_of = a.as_of
        WHERE a.as_of > :since AND a.previous_class IS NOT NULL
    """
    schema = {"customer_id": pl.Int64, "assessed_on": pl.Date, "risk_class": pl.String,
              "previous_class": pl.String}  # fmt: skip
    return query_frame(ctx.conn, sql, schema, {"as_of": ctx.as_of, "since": ctx.lookback_start})


def rule_class_downgraded(ctx: _Context) -> pl.DataFrame:
    frame = _latest_assessments(ctx).filter(
        _class_rank("risk_class") > _class_rank("previous_class")
    )
    risky = list(ctx.thresholds.risky_classes)
    return _raw(
        frame, "class_downgraded",
        pl.format("class_downgraded:{}:{}", "customer_id", "assessed_on"),
        pl.when(pl.col("risk_class").is_in(risky)).then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        _class_rank("risk_class"),
        _details("previous_class", "risk_class", "assessed_on"),
    )  # fmt: skip


def rule_review_overdue(ctx: _Context) -> pl.DataFrame:
    frame = reviews_due(ctx.conn, ctx.as_of).filter(
        pl.col("review_date").is_not_null() & (pl.col("review_date") < ctx.as_of)
    )
    risky = list(ctx.thresholds.risky_classes)
    return _raw(
        frame, "review_overdue", pl.format("review_overdue:{}:{}", "customer_id", "review_date"),
        pl.when(pl.col("risk_class").is_in(risky)).then(pl.lit("warning"))
        .otherwise(pl.lit("info")),
        pl.col("days_overdue"),
        _details("risk_class", "assessed_on", "review_date", "days_overdue"),
    )  # fmt: skip


def rule_large_order(ctx: _Context) -> pl.DataFrame:
    sql = """
        SELECT id AS order_check_id, customer_id, as_of AS checked_on, amount_minor, currency,
               decision, risk_class
        FROM order_checks WHERE as_of > :since AND as_of <= :as_of
    """
    schema = {"order_check_id": pl.Int64, "customer_id": pl.Int64, "checked_on": pl.Date,
              "amount_minor": pl.Int64, "currency": pl.String, "decision": pl.String,
              "risk_class": pl.String}  # fmt: skip
    frame = query_frame(ctx.conn, sql, schema, {"since": ctx.lookback_start, "as_of": ctx.as_of})
    risky = list(ctx.thresholds.risky_classes)
    frame = frame.filter(
        pl.col("risk_class").is_in(risky)
        & (pl.col("amount_minor") >= _currency_threshold(frame, ctx.thresholds.large_order_amount))
    )
    worst = CLASSES[-1]
    return _raw(
        frame, "large_order", pl.format("large_order:{}", "order_check_id"),
        pl.when((pl.col("decision") == "hold") | (pl.col("risk_class") == worst))
        .then(pl.lit("critical")).otherwise(pl.lit("warning")),
        pl.col("amount_minor"),
        _details("order_check_id", "currency", "amount_minor", "decision", "risk_class",
                 "checked_on"),
    )  # fmt: skip


def rule_predicted_late(ctx: _Context) -> pl.DataFrame | str:
    from encours.risk.model import score_open_invoices

    model = ctx.model()
    if model is None:
        return "no trained payment model (encours model train)"
    candidates = ctx.predicted_candidates()
    if candidates.is_empty():  # nothing large enough: no need to score the ledger
        return _empty()
    # only the candidates are scored (their features still read the whole history)
    scores = score_open_invoices(
        ctx.ledger(), model, ctx.as_of, document_ids=candidates["document_id"]
    ).select("document_id", "p_late", "predicted_payment_date", "predicted_days_late")
    frame = candidates.join(scores, on="document_id", how="inner").filter(
        pl.col("p_late") >= float(ctx.thresholds.p_late)
    )
    return _raw(
        frame, "predicted_late", pl.format("predicted_late:{}", "document_id"),
        pl.when(pl.col("p_late") >= 0.9).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        (pl.col("p_late") * 10_000).round(0),
        _details("document_id", "number", "currency", "due_date", "open_minor", "p_late",
                 "predicted_payment_date", "predicted_days_late"),
    )  # fmt: skip


RULES = {
    "limit_exceeded": rule_limit_exceeded,
    "new_overdue": rule_new_overdue,
    "dso_worsened": rule_dso_worsened,
    "broken_promise": rule_broken_promise,
    "class_downgraded": rule_class_downgraded,
    "review_overdue": rule_review_overdue,
    "large_order": rule_large_order,
    "predicted_late": rule_predicted_late,
}


# --- words --------------------------------------------------------------------------------


def kind_label(kind: str) -> str:
    labels = {
        "limit_exceeded": _("Credit limit exceeded"),
        "new_overdue": _("New overdue invoice"),
        "dso_worsened": _("DSO worsened"),
        "broken_promise": _("Broken promise to pay"),
        "class_downgraded": _("Risk class downgraded"),
        "large_order": _("Large order for a risky customer"),
        "review_overdue": _("Credit review overdue"),
        "predicted_late": _("Large invoice predicted late"),
    }
    return labels.get(kind, kind)


def severity_label(severity: str) -> str:
    labels = {"info": _("info"), "warning": _("warning"), "critical": _("critical")}
    return labels.get(severity, severity)


def alert_title(kind: str, details: dict, lang: str | None = None) -> str:
    """One line saying what happened, in the current language (amounts formatted in it)."""
    lang = lang or current_language()
    d = details

    def money(name: str) -> str:
        return format_money(int(d[name]), d["currency"], lang)

    if kind == "limit_exceeded":
        return _("Exposure {exposure} over the credit limit {limit} by {excess}").format(
            exposure=money("exposure_minor"), limit=money("limit_minor"),
            excess=money("excess_minor"))  # fmt: skip
    if kind == "new_overdue":
        return _("Invoice {number} of {amount} overdue since {due}").format(
            number=d["number"], amount=money("open_minor"), due=d["due_date"]
        )
    if kind == "dso_worsened":
        return _("DSO {dso} days, up {increase} days since {day}").format(
            dso=d["dso"], increase=d["increase"], day=d["compared_with"]
        )
    if kind == "broken_promise":
        return _("Promise to pay {amount} by {day} broken").format(
            amount=money("amount_minor"), day=d["promised_date"]
        )
    if kind == "class_downgraded":
        return _("Risk class {before} -> {after} (assessment of {day})").format(
            before=d["previous_class"], after=d["risk_class"], day=d["assessed_on"]
        )
    if kind == "review_overdue":
        return _("Credit review due on {day} ({days} days ago)").format(
            day=d["review_date"], days=d["days_overdue"]
        )
    if kind == "large_order":
        decisions = {"approve": _("approve"), "warn": _("warn"), "hold": _("hold")}
        return _("Order of {amount} checked on {day}: class {risk_class}, {decision}").format(
            amount=money("amount_minor"), day=d["checked_on"], risk_class=d["risk_class"],
            decision=decisions.get(d["decision"], d["decision"]))  # fmt: skip
    if kind == "predicted_late":
        return _("Invoice {number} of {amount} due {due}: {pct} % likely to be paid late").format(
            number=d["number"], amount=money("open_minor"), due=d["due_date"],
            pct=round(float(d["p_late"]) * 100))  # fmt: skip
    return kind


# --- the run ------------------------------------------------------------------------------


@dataclass
class MonitorReport:
    as_of: dt.date
    window_start: dt.date
    thresholds: dict
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    closed: int = 0
    run_id: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per rule (not stored)

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(), "window_start": self.window_start.isoformat(),
            "counts": self.counts, "skipped": self.skipped, "closed": self.closed,
            "run_id": self.run_id, "thresholds": self.thresholds,
        }  # fmt: skip


def _window_start(conn: Connection, as_of: dt.date, thresholds: Thresholds) -> dt.date:
    """Start of the "newly overdue" window: the previous run's day (none: the day before),
    never more than `lookback_days` back."""
    previous = conn.execute(
        select(func.max(RUNS.c.as_of)).where(RUNS.c.as_of < as_of)
    ).scalar_one_or_none()
    if isinstance(previous, str):
        previous = dt.date.fromisoformat(previous)
    floor = as_of - dt.timedelta(days=thresholds.lookback_days)
    start = previous if previous is not None else as_of - dt.timedelta(days=1)
    return max(start, floor)


def _assigned(raised: pl.DataFrame, conn: Connection) -> pl.DataFrame:
    customers = query_frame(
        conn, "SELECT id AS customer_id, code, name, account_owner, collector FROM customers",
        {"customer_id": pl.Int64, "code": pl.String, "name": pl.String,
         "account_owner": pl.String, "collector": pl.String},
    )  # fmt: skip
    collector_first = pl.col("kind").is_in(list(COLLECTOR_KINDS))
    return raised.join(customers, on="customer_id", how="left").with_columns(
        assignee=pl.when(collector_first)
        .then(pl.coalesce("collector", "account_owner"))
        .otherwise(pl.coalesce("account_owner", "collector"))
    )


def _worsened(thresholds: Thresholds) -> pl.Expr:
    num, den = _ratio(thresholds.worsen_ratio)
    rank = {k: v for k, v in SEVERITY_RANK.items()}
    sev_up = pl.col("severity").replace_strict(rank, return_dtype=pl.Int64) > pl.col(
        "severity_old"
    ).replace_strict(rank, default=0, return_dtype=pl.Int64)
    old = pl.col("metric_old")
    amount_grew = (
        pl.col("kind").is_in(list(AMOUNT_KINDS))
        & old.is_not_null()
        & (pl.col("metric") * den >= old * (den + num))
        & (pl.col("metric") > old)
    )
    step = int(thresholds.dso_increase_days * 10)
    dso_grew = (
        (pl.col("kind") == "dso_worsened") & old.is_not_null() & (pl.col("metric") - old >= step)
    )
    return (sev_up | amount_grew | dso_grew).fill_null(False)


def _titles(frame: pl.DataFrame) -> pl.Series:
    """The title of each row (one Python call per alert row written)."""
    titles = [
        alert_title(kind, json.loads(details))
        for kind, details in zip(frame["kind"], frame["details"], strict=True)
    ]
    return pl.Series("title", titles, dtype=pl.String)


def _close(conn: Connection, ids: list[int], as_of: dt.date) -> None:
    for start in range(0, len(ids), 5000):
        conn.execute(
            update(ALERTS)
            .where(ALERTS.c.id.in_(ids[start : start + 5000]))
            .values(status="closed", closed_on=as_of)
        )


def run_monitor(
    conn: Connection,
    as_of: dt.date,
    thresholds: Thresholds | None = None,
    *,
    actor: str = "cli",
    kinds: tuple[str, ...] | None = None,
) -> MonitorReport:
    """Raise, refresh and close the alerts of the day, in the caller's transaction."""
    thresholds = thresholds or Thresholds.from_env()
    ctx = _Context(conn, as_of, thresholds, _window_start(conn, as_of, thresholds),
                   kinds=tuple(kinds or ALERT_KINDS))  # fmt: skip
    report = MonitorReport(as_of, ctx.window_start, thresholds.as_dict())
    frames = []
    ran: list[str] = []
    for kind in kinds or ALERT_KINDS:
        started = time.perf_counter()
        result = RULES[kind](ctx)
        report.timings[kind] = round(time.perf_counter() - started, 3)
        if isinstance(result, str):
            report.skipped[kind] = result
            continue
        ran.append(kind)
        frames.append(result)
    started = time.perf_counter()
    raised = pl.concat(frames) if frames else _empty()
    raised = raised.unique(subset="key", keep="first", maintain_order=True)
    raised = _assigned(raised, conn)

    existing = query_frame(
        conn,
        "SELECT id, key, kind, status, severity, metric, last_seen FROM alerts "
        "WHERE status <> 'closed'",
        {"id": pl.Int64, "key": pl.String, "kind": pl.String, "status": pl.String,
         "severity": pl.String, "metric": pl.Int64, "last_seen": pl.Date},
    ).sort("id").unique(subset="key", keep="last")  # fmt: skip
    merged = raised.join(
        existing.select(
            "key", id_old="id", status_old="status", severity_old="severity",
            metric_old="metric", last_seen_old="last_seen",
        ),
        on="key", how="left",
    )  # fmt: skip
    is_new = pl.col("id_old").is_null()
    acked = pl.col("status_old") == "acknowledged"
    merged = merged.with_columns(worse=acked & _worsened(thresholds))
    to_insert = merged.filter(is_new | pl.col("worse"))
    refresh = merged.filter(pl.col("status_old") == "open")
    seen_only = merged.filter(acked & ~pl.col("worse"))

    # acknowledged alerts that worsened make way for a new open alert
    close_ids = to_insert.filter(pl.col("worse"))["id_old"].to_list()
    # conditions no longer found, acknowledged events out of the window
    gone = existing.filter(~pl.col("key").is_in(raised["key"].implode()))
    stale = gone.filter(
        pl.col("kind").is_in([k for k in CONDITION_KINDS if k in ran])
        & (pl.col("last_seen") <= as_of)
    )
    expired = gone.filter(
        pl.col("kind").is_in(list(EVENT_KINDS))
        & (pl.col("status") == "acknowledged")
        & (pl.col("last_seen") <= ctx.lookback_start)
    )
    close_ids += stale["id"].to_list() + expired["id"].to_list()
    _close(conn, close_ids, as_of)
    report.closed = len(close_ids)

    if refresh.height:
        rows = refresh.with_columns(_titles(refresh)).select(
            _id="id_old", _severity="severity", _metric="metric", _title="title",
            _details="details",
            _last_seen=pl.max_horizontal("last_seen_old", pl.lit(as_of)),
        )  # fmt: skip
        params = [{**r, "_details": json.loads(r["_details"])} for r in rows.iter_rows(named=True)]
        conn.execute(
            update(ALERTS).where(ALERTS.c.id == bindparam("_id")).values(
                severity=bindparam("_severity"), metric=bindparam("_metric"),
                title=bindparam("_title"), details=bindparam("_details"),
                last_seen=bindparam("_last_seen"),
            ),
            params,
        )  # fmt: skip
    if seen_only.height:
        ids = seen_only.filter(pl.col("last_seen_old") < as_of)["id_old"].to_list()
        for start in range(0, len(ids), 5000):
            conn.execute(
                update(ALERTS)
                .where(ALERTS.c.id.in_(ids[start : start + 5000]))
                .values(last_seen=as_of)
            )
    if to_insert.height:
        first = bulk.reserve_ids(conn, ALERTS, to_insert.height)
        rows = to_insert.with_columns(_titles(to_insert)).select(
            id=pl.int_range(first, first + to_insert.height, dtype=pl.Int64),
            customer_id="customer_id", kind="kind", severity="severity", key="key",
            as_of=pl.lit(as_of, dtype=pl.Date), last_seen=pl.lit(as_of, dtype=pl.Date),
            status=pl.lit("open"), assignee="assignee", title="title", details="details",
            metric="metric", created_at=pl.lit(_utcnow(), dtype=pl.Datetime("us")),
        )  # fmt: skip
        bulk.insert_frame(conn, ALERTS, rows)

    open_counts: dict[str, int] = dict(
        conn.execute(
            select(ALERTS.c.kind, func.count()).where(ALERTS.c.status == "open")
            .group_by(ALERTS.c.kind)
        ).all()
    )  # fmt: skip
    raised_counts = dict(raised.group_by("kind").len().iter_rows())
    new_counts = dict(to_insert.filter(is_new).group_by("kind").len().iter_rows())
    again = dict(to_insert.filter(pl.col("worse")).group_by("kind").len().iter_rows())
    for kind in ALERT_KINDS:
        report.counts[kind] = {
            "found": int(raised_counts.get(kind, 0)), "new": int(new_counts.get(kind, 0)),
            "reraised": int(again.get(kind, 0)), "open": int(open_counts.get(kind, 0)),
        }  # fmt: skip
    report.timings["write"] = round(time.perf_counter() - started, 3)
    report.run_id = conn.execute(
        RUNS.insert()
        .values(
            as_of=as_of,
            started_at=_utcnow(),
            actor=actor,
            summary={"counts": report.counts, "skipped": report.skipped, "closed": report.closed},
        )  # fmt: skip
        .returning(RUNS.c.id)
    ).scalar_one()
    return report


# --- alerts: list and acknowledge ---------------------------------------------------------


def list_alerts(
    conn: Connection,
    *,
    status: str | None = "open",
    assignee: str | None = None,
    kind: str | None = None,
) -> list[dict]:
    """Alerts with their customer, most severe and newest first."""
    stmt = (
        select(ALERTS, Customer.code.label("customer_code"), Customer.name.label("customer_name"))
        .join(Customer, Customer.id == ALERTS.c.customer_id)
        .order_by(ALERTS.c.as_of.desc(), ALERTS.c.id)
    )
    if status:
        stmt = stmt.where(ALERTS.c.status == status)
    if assignee:
        stmt = stmt.where(ALERTS.c.assignee == assignee)
    if kind:
        stmt = stmt.where(ALERTS.c.kind == kind)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    rows.sort(key=lambda r: -SEVERITY_RANK.get(r["severity"], 0))  # stable: newest first kept
    return rows


def acknowledge(
    conn: Connection,
    alert_id: int,
    comment: str,
    actor: str,
    day: dt.date | None = None,
) -> dict:
    """An open alert acknowledged by `actor` with a comment (audited, on the timeline)."""
    if not comment.strip():
        raise ValueError(_("A comment is required to acknowledge an alert"))
    row = conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).mappings().first()
    if row is None:
        raise LookupError(_("No alert {id}").format(id=alert_id))
    if row["status"] != "open":
        raise ValueError(
            _("Alert {id} is {status}, not open").format(id=alert_id, status=row["status"])
        )
    now = _utcnow()
    conn.execute(
        update(ALERTS).where(ALERTS.c.id == alert_id).values(
            status="acknowledged", acknowledged_by=actor, acknowledged_at=now, comment=comment)
    )  # fmt: skip
    conn.execute(
        AuditEntry.__table__.insert().values(
            at=now, actor=actor, action="alert.acknowledge", entity="alert",
            entity_key=str(alert_id), before={"status": "open"},
            after={"status": "acknowledged", "comment": comment, "kind": row["kind"],
                   "key": row["key"]},
        )
    )  # fmt: skip
    summary = _("Alert acknowledged: {title} ({comment})").format(
        title=row["title"], comment=comment
    )
    conn.execute(
        TimelineEvent.__table__.insert().values(
            customer_id=row["customer_id"], at=now, day=day or dt.date.today(), kind="alert",
            actor=actor, summary=summary, ref_table="alerts", ref_id=alert_id,
            data={"kind": row["kind"], "comment": comment},
        )
    )  # fmt: skip
    return {**dict(row), "status": "acknowledged", "acknowledged_by": actor,
            "acknowledged_at": now, "comment": comment}  # fmt: skip


# --- order checks -------------------------------------------------------------------------


def record_order_check(
    conn: Connection,
    result: OrderDecision,
    actor: str,
    *,
    as_of: dt.date,
    customer_id: int | None = None,
) -> int:
    """Log an order check (the decision of `risk.order_check.check_order` for an order of
    the customer on the day) for the `large_order` rule: one small insert, in the caller's
    transaction. `customer_id` defaults to the decision's own. Returns the log row's id."""
    customer_id = customer_id if customer_id is not None else result.customer_id
    if customer_id is None:
        raise ValueError("record_order_check: the customer of the decision is unknown")
    currency = result.currency
    limit = result.limit
    return conn.execute(
        ORDER_CHECKS.insert().values(
            customer_id=customer_id, as_of=as_of, currency=currency,
            amount_minor=to_minor(result.order, currency), decision=result.decision,
            risk_class=result.risk_class, exposure_minor=to_minor(result.exposure, currency),
            limit_minor=None if limit is None else to_minor(limit, currency),
            codes=list(result.codes), actor=actor, at=_utcnow(),
        ).returning(ORDER_CHECKS.c.id)
    ).scalar_one()  # fmt: skip


def check_and_record_order(
    conn: Connection,
    customer_code: str,
    amount: Decimal,
    as_of: dt.date,
    actor: str,
    *,
    record: bool = True,
    owner_name: str | None = None,
) -> tuple[OrderDecision, int | None]:
    """`risk.order_check.check_order`, then logged (`record_order_check`) in the same
    transaction; `record=False` (a what-if check): not logged, the id is None.
    `owner_name`: only a customer of that account owner (else LookupError, as unknown)."""
    from encours.risk.order_check import check_order

    result = check_order(conn, customer_code, amount, as_of, owner_name=owner_name)
    if not record:
        return result, None
    return result, record_order_check(conn, result, actor, as_of=as_of)
