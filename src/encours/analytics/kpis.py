"""Receivables KPIs as of a day, per customer and for the portfolio, per currency.

Everything is replayed as of `as_of`: only invoices issued, payments received and
allocations effective on or before that day count (see `encours.store.positions`).
"Receivables" are the open amounts of invoices (amount - allocations), the "invoices open"
of the positions; unapplied cash and credit notes are not deducted. "Sales" are the amounts
incl. VAT of the (non-cancelled) invoices issued in a period; credit notes do not reduce
them. Money stays in integer minor units; day counts, ratios and percentages are floats
rounded to 1 decimal. A KPI that cannot be defined is None ("undefined"). Disputed
invoices count like the others; cancelled ones never count (their current status: the
ledger does not date cancellations).

Monthly periods ("months") are counted back from the as-of day: period 0 is
(as_of - 1 month, as_of], period 1 is (as_of - 2 months, as_of - 1 month], ... A month back
keeps the day of the month (clamped to the month's length), except that when `as_of` is
the last day of its month the boundaries are month-ends (31 Mar -> 28/29 Feb -> 31 Jan),
so that month-end snapshots use calendar months.

Formulas:

- DSO, count-back method (`dso`): B = receivables as of the day. Going back period by
  period, while B exceeds the sales S_k of period k, subtract S_k and add the period's
  d_k days; the first period whose sales cover the rest contributes pro rata:
  DSO = sum(d_j for fully consumed periods) + remaining B / S_k x d_k.
  B <= 0 gives 0. The lookback is 12 periods: if B still exceeds their total sales T,
  the rest is extrapolated at the 12-month average daily sales
  (DSO = D12 + (B - T) / (T / D12), D12 = days of the 12 periods), capped at 730 days.
  No sale in the 12 periods and B > 0: DSO undefined (None).
- BPDSO, best possible DSO (`bpdso`), over the last 3 monthly periods (3 months ending on
  the day): BPDSO = current (not yet due: due on or after the day) receivables
  / sales of the 3 months x days of the 3 months. 0 when nothing is current, None when
  current receivables > 0 but no sale in the 3 months.
- ADD, average days delinquent (`add`) = DSO - BPDSO (None when either is). The two use
  different methods (count-back vs. 3-month average), so ADD can be slightly negative
  when sales are uneven; it is not floored.
- CEI, collection effectiveness index (`cei`, percent) over the `cei_days` days ending on
  the day, i.e. the period (as_of - cei_days, as_of]:
  CEI = (R_begin + sales - R_end) / (R_begin + sales - R_end_current) x 100, where R_begin =
  receivables as of as_of - cei_days, sales = invoices issued in the period, R_end =
  receivables as of the day, R_end_current = its not-yet-due part. None when the
  denominator is <= 0 (nothing to collect).
- Settled invoices: an invoice is settled as of the day when its allocations dated on or
  before the day cover its amount; its settlement date is the latest of those allocation
  dates (payments and credit notes alike). The 12-month window is
  (as_of - 12 months, as_of] on the settlement date.
- WADP, weighted average days to pay (`wadp`) = sum(amount x (settlement - issue date))
  / sum(amount) over the invoices settled in the window; None when there is none.
- WADL, weighted average days late (`wadl`) = same with max(settlement - due date, 0).
- Late share (`late_share_count`, `late_share_amount`, percent): among the invoices
  settled in the window, the share (by count, by amount) settled after their due date.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import polars as pl
from sqlalchemy import Connection

from encours.store import kpi_queries

DSO_CAP_DAYS = 730.0
LOOKBACK_MONTHS = kpi_queries.MONTHS_BACK
BPDSO_MONTHS = 3
DEFAULT_CEI_DAYS = 30


def month_back(as_of: dt.date, months: int) -> dt.date:
    """`as_of` moved back `months` calendar months (month-end stays month-end)."""
    index = as_of.year * 12 + as_of.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    if as_of.day == calendar.monthrange(as_of.year, as_of.month)[1]:
        return dt.date(year, month, last)
    return dt.date(year, month, min(as_of.day, last))


def period_boundaries(as_of: dt.date, months: int = LOOKBACK_MONTHS) -> list[dt.date]:
    """[as_of, as_of - 1 month, ..., as_of - `months` months]; period k = (b[k+1], b[k]]."""
    return [month_back(as_of, k) for k in range(months + 1)]


def _rounded(name: str, values: np.ndarray) -> pl.Series:
    """1-decimal floats, NaN (undefined) as null."""
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None).round(1)


def count_back_dso(
    balance: np.ndarray, sales: np.ndarray, days: np.ndarray, cap: float = DSO_CAP_DAYS
) -> np.ndarray:
    """Count-back DSO for many rows at once (NaN = undefined).

    balance: (n,), sales: (n, m) sales of the periods going back, days: (m,) their days.
    """
    balance = balance.astype(np.float64)
    sales = sales.astype(np.float64)
    days = days.astype(np.float64)
    n = sales.shape[0]
    cum_sales = np.cumsum(sales, axis=1)
    cum_days = np.concatenate([[0.0], np.cumsum(days)])
    covered = cum_sales >= balance[:, None]
    found = covered.any(axis=1)
    k = np.argmax(covered, axis=1)  # first period whose cumulated sales cover the balance
    rows = np.arange(n)
    before = np.where(k > 0, cum_sales[rows, np.maximum(k - 1, 0)], 0.0)
    s_k = sales[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        within = cum_days[k] + (balance - before) / s_k * days[k]
        total = cum_sales[:, -1]
        beyond = cum_days[-1] + (balance - total) * cum_days[-1] / total
    dso = np.where(found, within, np.where(total > 0, beyond, np.nan))
    dso = np.where(balance <= 0, 0.0, dso)
    return np.minimum(dso, cap)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _kpis_from_aggregates(
    frame: pl.DataFrame, as_of: dt.date, keys: tuple[str, ...]
) -> pl.DataFrame:
    """All KPIs, vectorised over the groups of `kpi_queries.kpi_aggregates`."""
    bounds = period_boundaries(as_of)
    days = np.array([(bounds[k] - bounds[k + 1]).days for k in range(LOOKBACK_MONTHS)])
    sales_cols = [f"s{k}" for k in range(LOOKBACK_MONTHS)]

    def arr(name: str) -> np.ndarray:
        return frame[name].to_numpy().astype(np.float64)

    balance, current = arr("open_minor"), arr("not_due_minor")
    sales = frame.select(sales_cols).to_numpy().astype(np.float64).reshape(-1, len(sales_cols))
    dso = count_back_dso(balance, sales, days)

    sales_3m = sales[:, :BPDSO_MONTHS].sum(axis=1)
    days_3m = float(days[:BPDSO_MONTHS].sum())
    bpdso = np.where(current <= 0, 0.0, _safe_ratio(current, sales_3m) * days_3m)
    add = dso - bpdso  # NaN (undefined) propagates

    begin, cei_sales = arr("begin_open_minor"), arr("cei_sales_minor")
    cei = _safe_ratio(begin + cei_sales - balance, begin + cei_sales - current) * 100

    settled_minor = arr("settled_minor")
    wadp = _safe_ratio(arr("pay_days_minor"), settled_minor)
    wadl = _safe_ratio(arr("late_days_minor"), settled_minor)
    late_count = _safe_ratio(arr("late_count"), arr("settled_count")) * 100
    late_amount = _safe_ratio(arr("late_minor"), settled_minor) * 100

    floats = {
        "dso": dso, "bpdso": bpdso, "add": add, "cei": cei, "wadp": wadp, "wadl": wadl,
        "late_share_count": late_count, "late_share_amount": late_amount,
    }  # fmt: skip
    return frame.select(
        *keys,
        receivables_minor=pl.col("open_minor"),
        current_minor=pl.col("not_due_minor"),
        overdue_minor=pl.col("open_minor") - pl.col("not_due_minor"),
        sales_12m_minor=pl.sum_horizontal(sales_cols),
        sales_3m_minor=pl.sum_horizontal(sales_cols[:BPDSO_MONTHS]),
        cei_begin_minor=pl.col("begin_open_minor"),
        cei_sales_minor=pl.col("cei_sales_minor"),
        settled_12m=pl.col("settled_count"),
        settled_12m_minor=pl.col("settled_minor"),
    ).with_columns([_rounded(name, values) for name, values in floats.items()])


def _kpi_frame(
    conn: Connection,
    as_of: dt.date,
    grouping: str,
    customer_id: int | None,
    cei_days: int,
) -> pl.DataFrame:
    if cei_days <= 0:
        raise ValueError(f"cei_days must be positive, got {cei_days}")
    keys = kpi_queries.GROUPINGS[grouping]
    bounds = period_boundaries(as_of)
    cei_start = as_of - dt.timedelta(days=cei_days)
    aggregates = kpi_queries.kpi_aggregates(
        conn, as_of, bounds, cei_start, grouping=grouping, customer_id=customer_id
    )
    return _kpis_from_aggregates(aggregates, as_of, keys).sort(list(keys))


def customer_kpis(
    conn: Connection, as_of: dt.date, *, cei_days: int = DEFAULT_CEI_DAYS
) -> pl.DataFrame:
    """KPIs of every customer as of the day, one row per customer and currency.

    Columns: customer_id, currency, receivables_minor, current_minor, overdue_minor,
    sales_12m_minor, sales_3m_minor, cei_begin_minor, cei_sales_minor, dso, bpdso, add, cei,
    settled_12m (count), settled_12m_minor, wadp, wadl, late_share_count, late_share_amount.
    Only customers with receivables, sales or settlements in the lookback have a row. One
    aggregate query for all customers at once, then vectorised arithmetic (no per-customer
    or per-invoice Python work).
    """
    return _kpi_frame(conn, as_of, "customer", None, cei_days)


def compute_kpis(
    conn: Connection,
    as_of: dt.date,
    *,
    customer_id: int | None = None,
    cei_days: int = DEFAULT_CEI_DAYS,
) -> dict[str, dict]:
    """KPIs of the portfolio (or of one customer) per currency: {currency: {key: value}}.

    Keys: as_of (ISO date), cei_days, receivables_minor, current_minor, overdue_minor,
    sales_12m_minor, sales_3m_minor, cei_begin_minor, cei_sales_minor (ints, minor units),
    dso, bpdso, add, cei, wadp, wadl, late_share_count, late_share_amount (float or None),
    settled_12m (count), settled_12m_minor. Portfolio KPIs are computed on the portfolio's
    totals (count-back on the total balance and total sales), not averaged over customers.
    """
    frame = _kpi_frame(conn, as_of, "portfolio", customer_id, cei_days)
    result: dict[str, dict] = {}
    for row in frame.iter_rows(named=True):  # one row per currency
        currency = row.pop("currency")
        result[currency] = {"as_of": as_of.isoformat(), "cei_days": cei_days, **row}
    return result
