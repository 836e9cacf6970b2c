"""Payment behaviour of every customer from the ledger, and its transparent scorecard.

Features, as of a day, for all customers at once (set-based: the KPI aggregates of
`analytics.kpis`, the open invoices of `store.positions`, two GROUP BY queries):

- late_share: % of the invoices settled in the last 12 months that were settled late
  (`late_share_count` of the KPIs); 100 % for a customer with overdue invoices and none
  settled yet;
- avg_days_late: amount-weighted average days late of those invoices (WADL); the days of
  the oldest overdue invoice for a customer who never settled one;
- days_late_trend: WADL now minus WADL 3 months ago (positive: paying later and later);
- max_days_overdue: days past due of the oldest open overdue invoice (0: nothing overdue);
- open_disputes: open invoices flagged disputed;
- broken_promises: promises to pay broken in the last 12 months (table `promises` of the
  dunning module; while that table does not exist the count is 0 and the reasons say so);
- exposure_growth: % growth of the receivables over the last 90 days;
- days_since_payment: days since the last payment received (since the first invoice for a
  customer who never paid).

The scorecard gives points per feature bin; a worse value never earns more points (the
points are non-increasing along the bins, checked when a scorecard is built). The bins and
points are policy, written here in plain numbers so that a sales rep can be shown why a
customer scores what it scores. Why not optbinning: supervised optimal binning needs a
default flag per customer that the ledger does not have yet (no observed defaults), and
it pulls in OR-Tools and scikit-learn; an expert scorecard with monotonic points is as
transparent and is refitted by editing the edges. `quantile_edges` proposes edges from
the portfolio's own distribution when a policy wants data-driven bins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy import Connection, inspect

from encours.analytics.kpis import customer_kpis, month_back
from encours.store import positions
from encours.store.frames import query_frame

GROWTH_DAYS = 90
TREND_MONTHS = 3


@dataclass(frozen=True, slots=True)
class Feature:
    """Points per bin of one feature: bin i holds values <= edges[i] (after edges[i-1]);
    the last bin holds the values above the last edge. `missing_points` when unknown."""

    name: str
    edges: tuple[float, ...]
    points: tuple[int, ...]
    missing_points: int
    unit: str = ""

    def __post_init__(self) -> None:
        if len(self.points) != len(self.edges) + 1:
            raise ValueError(f"{self.name}: {len(self.edges)} edges need {len(self.edges) + 1} "
                             f"points, got {len(self.points)}")  # fmt: skip
        if list(self.edges) != sorted(set(self.edges)):
            raise ValueError(f"{self.name}: edges must be strictly increasing")
        if any(b > a for a, b in zip(self.points, self.points[1:], strict=False)):
            raise ValueError(f"{self.name}: points must not increase with a worse value")
        if not min(self.points) <= self.missing_points <= max(self.points):
            raise ValueError(f"{self.name}: missing points outside the range of the bins")

    @property
    def max_points(self) -> int:
        return self.points[0]

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges, dtype=np.float64), values, side="left")

    def score(self, values: np.ndarray) -> np.ndarray:
        """Points of each value (NaN: missing_points)."""
        values = np.asarray(values, dtype=np.float64)
        points = np.asarray(self.points, dtype=np.int64)[self.bin_of(np.nan_to_num(values))]
        return np.where(np.isnan(values), self.missing_points, points)

    def bin_label(self, index: int) -> str:
        unit = self.unit
        if index == 0:
            return f"<= {self.edges[0]:g}{unit}"
        if index == len(self.edges):
            return f"> {self.edges[-1]:g}{unit}"
        return f"{self.edges[index - 1]:g}-{self.edges[index]:g}{unit}"


@dataclass(frozen=True, slots=True)
class Scorecard:
    features: tuple[Feature, ...]
    # minimum total points of classes A, B, C, D (below the last: E)
    bands: tuple[int, int, int, int] = (80, 65, 50, 35)

    @property
    def max_points(self) -> int:
        return sum(f.max_points for f in self.features)

    def grade(self, points: np.ndarray) -> np.ndarray:
        """Class index 0 (A) .. 4 (E) of total points."""
        thresholds = np.asarray(self.bands[::-1], dtype=np.float64)  # ascending
        return 4 - np.searchsorted(thresholds, np.asarray(points, dtype=np.float64),
                                   side="right")  # fmt: skip


DEFAULT_SCORECARD = Scorecard(
    features=(
        Feature("late_share", (0, 10, 25, 50), (20, 16, 10, 5, 0), 10, " %"),
        Feature("avg_days_late", (0, 5, 15, 30, 60), (20, 17, 12, 7, 3, 0), 10, " d"),
        Feature("max_days_overdue", (0, 15, 30, 60, 90), (20, 16, 12, 6, 2, 0), 20, " d"),
        Feature("days_late_trend", (-5, 0, 5, 15), (10, 8, 6, 3, 0), 6, " d"),
        Feature("open_disputes", (0, 1, 3), (10, 6, 3, 0), 10),
        Feature("broken_promises", (0, 1, 2), (10, 5, 2, 0), 10),
        Feature("exposure_growth", (10, 50, 100), (5, 3, 1, 0), 3, " %"),
        Feature("days_since_payment", (45, 90, 180), (5, 3, 1, 0), 2, " d"),
    )
)
FEATURES = tuple(f.name for f in DEFAULT_SCORECARD.features)


def quantile_edges(values: np.ndarray, bins: int) -> tuple[float, ...]:
    """Edges splitting the known values into `bins` groups of equal size (distinct)."""
    known = np.asarray(values, dtype=np.float64)
    known = known[~np.isnan(known)]
    if known.size == 0 or bins < 2:
        return ()
    qs = np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])
    return tuple(float(q) for q in np.unique(np.round(qs, 2)))


def promises_available(conn: Connection) -> bool:
    return inspect(conn).has_table("promises")


def _broken_promises(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    schema = {"customer_id": pl.Int64, "broken_promises": pl.Int64}
    if not promises_available(conn):
        return pl.DataFrame(schema=schema)
    sql = """
        SELECT customer_id, COUNT(*) AS broken_promises FROM promises
        WHERE status = 'broken' AND promised_date > :since AND promised_date <= :as_of
        GROUP BY customer_id
    """
    return query_frame(conn, sql, schema, {"as_of": as_of, "since": month_back(as_of, 12)})


def _overdue(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    """Per customer with open invoices: days past due of the oldest overdue one (0: none
    overdue) and the open disputed invoices. One aggregate over the open-invoice query of
    `store.positions` (the one definition of an open invoice): no invoice row leaves the
    database."""
    # the positions module's own SQL (private there; order_check reads it the same way)
    open_sql = positions._open_invoices_sql(conn)  # noqa: SLF001
    sql = f"""
        SELECT o.customer_id, MIN(o.due_date) AS oldest_due,
               SUM(CASE WHEN o.disputed = :yes AND o.open_minor > 0 THEN 1 ELSE 0 END)
                   AS open_disputes
        FROM ({open_sql}) o
        GROUP BY o.customer_id
    """
    frame = query_frame(
        conn, sql,
        {"customer_id": pl.Int64, "oldest_due": pl.Date, "open_disputes": pl.Int64},
        {"as_of": as_of, "yes": True},
    )  # fmt: skip
    return frame.select(
        "customer_id",
        max_days_overdue=(pl.lit(as_of) - pl.col("oldest_due")).dt.total_days()
        .clip(lower_bound=0),
        open_disputes="open_disputes",
    )  # fmt: skip


def behaviour_features(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    """One row per customer: the features of the module docstring (null = unknown) and
    `has_history` (any invoice issued on or before the day)."""
    kpis = customer_kpis(conn, as_of, cei_days=GROWTH_DAYS)
    earlier = customer_kpis(conn, month_back(as_of, TREND_MONTHS))
    per_customer = (
        kpis.group_by("customer_id")
        .agg(
            late_share=pl.col("late_share_count").max(),
            avg_days_late=pl.col("wadl").max(),
            receivables=pl.col("receivables_minor").sum(),
            receivables_before=pl.col("cei_begin_minor").sum(),
        )
        .join(
            earlier.group_by("customer_id").agg(wadl_before=pl.col("wadl").max()),
            on="customer_id",
            how="left",
        )
    )
    overdue = _overdue(conn, as_of)
    last_payment = query_frame(
        conn,
        "SELECT customer_id, MAX(date) AS last_payment FROM payments WHERE date <= :as_of "
        "GROUP BY customer_id",
        {"customer_id": pl.Int64, "last_payment": pl.Date},
        {"as_of": as_of},
    )
    history = query_frame(
        conn,
        "SELECT customer_id, MIN(issue_date) AS first_invoice FROM documents "
        "WHERE kind = 'invoice' AND issue_date <= :as_of GROUP BY customer_id",
        {"customer_id": pl.Int64, "first_invoice": pl.Date},
        {"as_of": as_of},
    )
    customers = query_frame(conn, "SELECT id AS customer_id FROM customers",
                            {"customer_id": pl.Int64})  # fmt: skip
    frame = (
        customers.join(per_customer, on="customer_id", how="left")
        .join(overdue, on="customer_id", how="left")
        .join(_broken_promises(conn, as_of), on="customer_id", how="left")
        .join(last_payment, on="customer_id", how="left")
        .join(history, on="customer_id", how="left")
    )
    growth = (
        pl.when(pl.col("receivables_before") > 0)
        .then((pl.col("receivables") - pl.col("receivables_before"))
              / pl.col("receivables_before") * 100)
        .when(pl.col("receivables").fill_null(0) <= 0)
        .then(0.0)
        .otherwise(None)
    )  # fmt: skip
    # A customer with overdue invoices and nothing settled yet is late on all of them: its
    # late share is 100 % and its days late those of the oldest overdue invoice.
    never_settled = pl.col("late_share").is_null() & (pl.col("max_days_overdue") > 0)
    return frame.select(
        "customer_id",
        has_history=pl.col("first_invoice").is_not_null(),
        late_share=pl.when(never_settled).then(100.0).otherwise(pl.col("late_share"))
        .cast(pl.Float64),
        avg_days_late=pl.when(never_settled).then(pl.col("max_days_overdue"))
        .otherwise(pl.col("avg_days_late")).cast(pl.Float64),
        days_late_trend=(pl.col("avg_days_late") - pl.col("wadl_before")).cast(pl.Float64),
        max_days_overdue=pl.col("max_days_overdue").fill_null(0).cast(pl.Float64),
        open_disputes=pl.col("open_disputes").fill_null(0).cast(pl.Float64),
        broken_promises=pl.col("broken_promises").fill_null(0).cast(pl.Float64),
        exposure_growth=growth.cast(pl.Float64),
        # never paid: counted from the first invoice
        days_since_payment=(pl.lit(as_of) - pl.coalesce("last_payment", "first_invoice"))
        .dt.total_days().cast(pl.Float64),
    ).sort("customer_id")  # fmt: skip


def score_features(
    features: pl.DataFrame, scorecard: Scorecard = DEFAULT_SCORECARD
) -> pl.DataFrame:
    """The features with `<name>_points` per feature, `behaviour_points` (total) and
    `behaviour_grade` (0 = A .. 4 = E; null without payment history)."""
    columns = {}
    for feature in scorecard.features:
        values = features[feature.name].fill_null(np.nan).to_numpy()
        columns[f"{feature.name}_points"] = pl.Series(feature.score(values), dtype=pl.Int64)
    scored = features.with_columns(**columns)
    total = pl.sum_horizontal([f"{f.name}_points" for f in scorecard.features])
    scored = scored.with_columns(behaviour_points=total)
    grades = scorecard.grade(scored["behaviour_points"].to_numpy())
    return scored.with_columns(
        behaviour_grade=pl.when(pl.col("has_history"))
        .then(pl.Series(grades, dtype=pl.Int64))
        .otherwise(None),
        behaviour_points=pl.when(pl.col("has_history")).then("behaviour_points").otherwise(None),
    )


def explain(row: dict, scorecard: Scorecard = DEFAULT_SCORECARD) -> list[dict]:
    """The scorecard lines of one scored customer: feature, value, bin, points, max."""
    lines = []
    for feature in scorecard.features:
        value = row.get(feature.name)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            label = "?"
        else:
            label = feature.bin_label(int(feature.bin_of(np.array([value]))[0]))
        lines.append({
            "feature": feature.name,
            "value": None if label == "?" or value is None else round(float(value), 1),
            "bin": label,
            "points": int(row[f"{feature.name}_points"]),
            "max_points": feature.max_points,
        })  # fmt: skip
    return lines
