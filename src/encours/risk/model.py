"""The late-payment model: will an invoice be paid late, by how many days, and why.

Two estimators on the point-in-time features of `encours.risk.features`:

- a classifier of `late` (settlement date > due date), giving `p_late`;
- a regressor of the signed delay (settlement - due date, in days, clipped to
  [-DELAY_CLIP, DELAY_CLIP]); predicted_days_late = max(predicted delay, 0) and
  predicted_payment_date = due date + predicted delay.

`kind` "lightgbm" (gradient-boosted trees, the default: best measured results, see
docs/model.md) or "logistic" (logistic regression + ridge on standardized features).
Top reasons of a prediction: the features' contributions to its log-odds of being late
(LightGBM `pred_contrib`, or coefficient x standardized value for the logistic model),
each said as a sentence in the reader's language with its contribution
("History: paid 5.9 days late on average (+1.11)", `feature_text`).

Training as of a day D uses the invoices issued before D whose outcome was known on D:
settled before D (late or not), or still open on D after their due date (late; no
delay for the regressor). Each row's features are as of its issue date.

Open invoices scored as of D get features as of D. They are known to be still open on D:
an invoice already overdue is late for sure (p_late = 1), and a predicted payment date
that has already passed is replaced by D + the mean residual delay observed, in the
training data, for invoices still unpaid that many days after their due date (invoices
still unpaid on the training day count with their delay so far, a lower bound).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from sqlalchemy import Connection, insert, select

from encours.i18n import N_
from encours.i18n import gettext as _gettext
from encours.risk.features import FEATURES, Ledger, compute_features, load_ledger, with_targets
from encours.store.db import unit_of_work
from encours.store.model_schema import PaymentModel

ModelKind = Literal["lightgbm", "logistic"]
KINDS: tuple[str, ...] = ("lightgbm", "logistic")
DELAY_CLIP = 180
# Residual delay of still-unpaid invoices, by days elapsed since the due date (lower edges).
RESIDUAL_EDGES: tuple[int, ...] = (-60, -30, -14, -7, 0, 7, 14, 30, 45, 60, 90, 120, 180)
TOP_REASONS = 3

LGBM_CLASSIFIER: dict[str, Any] = dict(
    n_estimators=120, learning_rate=0.08, num_leaves=15, min_child_samples=20,
    subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
    random_state=7, n_jobs=1, verbose=-1,
)  # fmt: skip
LGBM_REGRESSOR: dict[str, Any] = dict(LGBM_CLASSIFIER, objective="l1")

# --- reasons in words -----------------------------------------------------------------
# A feature's value said as a sentence: {value} is the value as shown (1 decimal), with
# the unit conversions of `_shown`. Booleans have a sentence for yes and one for no.
FEATURE_TEXTS: dict[str, str] = {
    "log_amount": N_("Invoice amount {value}"),
    "amount_vs_customer_avg": N_("Amount {value} times the customer's average invoice"),
    "terms_days": N_("Payment terms of {value} days"),
    "issue_month": N_("Issued in month {value}"),
    "issue_weekday": N_("Issued on a {value}"),
    "issue_day_of_month": N_("Issued on day {value} of the month"),
    "paperless_days": N_("Paperless billing for {value} days"),
    "hist_count": N_("History: {value} invoices settled"),
    "hist_late_rate": N_("History: {value} % of the invoices paid late"),
    "hist_days_late": N_("History: {value} days late on average (late invoices count)"),
    "hist_delay": N_("History: paid {value} days late on average"),
    "hist_delay_std": N_("History: payment delay varies by {value} days"),
    "hist_recent_days_late": N_("History: {value} days late on average on the last invoices"),
    "hist_last_days_late": N_("Last settled invoice paid {value} days late"),
    "days_since_last_settlement": N_("{value} days since the last settled invoice"),
    "hist_days_to_settle": N_("History: settled {value} days after issue on average"),
    "open_count": N_("{value} other invoice(s) open"),
    "open_amount_ratio": N_("Open receivables {value} times the average invoice"),
    "overdue_count": N_("{value} invoice(s) overdue"),
    "overdue_share": N_("{value} % of the open invoices overdue"),
    "prior_late_rate": N_("Segment or portfolio: {value} % of the invoices paid late"),
    "prior_days_late": N_("Segment or portfolio: {value} days late on average"),
    "late_rate_shrunk": N_("Estimated late-payment rate of the customer {value} %"),
    "days_late_shrunk": N_("Estimated days late of the customer {value}"),
    "class_prior_late_rate": N_("Customers of its risk class: {value} % paid late"),
    "class_prior_days_late": N_("Customers of its risk class: {value} days late on average"),
}
FEATURE_EARLY: dict[str, str] = {  # negative average delays read better as "early"
    "hist_delay": N_("History: paid {value} days early on average"),
}
FEATURE_FLAGS: dict[str, tuple[str, str]] = {
    "disputed": (N_("Invoice disputed"), N_("Invoice not disputed")),
    "electronic": (N_("Invoice sent electronically"), N_("Invoice sent on paper")),
    "paperless_customer": (N_("Customer on paperless billing"),
                           N_("Customer not on paperless billing")),
    "has_history": (N_("Customer with a payment history"), N_("No payment history yet")),
}  # fmt: skip
FEATURE_UNKNOWN: dict[str, str] = {
    "class_prior_late_rate": N_("No risk class for the customer"),
    "class_prior_days_late": N_("No risk class for the customer"),
}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
            N_("Saturday"), N_("Sunday"))  # fmt: skip
PERCENT_FEATURES = frozenset({"hist_late_rate", "overdue_share", "prior_late_rate",
                              "late_rate_shrunk", "class_prior_late_rate"})  # fmt: skip


def _shown(name: str, value: float) -> str:
    if name == "log_amount":  # log(amount in minor units + 1), shown in major units
        return f"{(math.exp(value) - 1) / 100:,.0f}".replace(",", " ")
    if name in PERCENT_FEATURES:
        value *= 100
    if name in FEATURE_EARLY and value < 0:
        value = -value
    rounded = round(value, 1)
    return str(int(rounded)) if float(rounded).is_integer() else f"{rounded:.1f}"


def feature_text(name: str, value: float, gettext: Callable[[str], str] | None = None) -> str:
    """A feature's value as a sentence in the current language (or `gettext`'s)."""
    tr = gettext or _gettext
    if name in FEATURE_FLAGS:
        yes, no = FEATURE_FLAGS[name]
        return tr(no) if math.isnan(value) or value == 0 else tr(yes)
    if math.isnan(value):
        if name in FEATURE_UNKNOWN:
            return tr(FEATURE_UNKNOWN[name])
        if name.startswith("hist_") or name == "days_since_last_settlement":
            return tr(FEATURE_FLAGS["has_history"][1])
        return tr(N_("{feature}: unknown")).format(feature=name)
    template = FEATURE_EARLY[name] if name in FEATURE_EARLY and value < 0 else \
        FEATURE_TEXTS.get(name)  # fmt: skip
    if template is None:
        return f"{name}={value:.4g}"
    if name == "issue_weekday" and 1 <= value <= 7:  # polars: 1 = Monday
        return tr(template).format(value=tr(WEEKDAYS[int(value) - 1]))
    return tr(template).format(value=_shown(name, value))


@dataclass
class FittedModel:
    """The trained estimators and what is needed to apply them later."""

    kind: str
    as_of: dt.date
    features: tuple[str, ...]
    classifier: Any
    regressor: Any
    residuals: list[tuple[int, float]]  # (days since due lower edge, mean residual days)
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    # --- estimation -------------------------------------------------------------------
    def _matrix(self, frame: pl.DataFrame) -> np.ndarray:
        return frame.select(self.features).to_numpy().astype(np.float64)

    def _predict_kwargs(self) -> dict:
        # LightGBM predicts on all the cores (trained on one thread: reproducible)
        return {"num_threads": os.cpu_count() or 1} if self.kind == "lightgbm" else {}

    def p_late(self, frame: pl.DataFrame) -> np.ndarray:
        return self.classifier.predict_proba(self._matrix(frame), **self._predict_kwargs())[:, 1]

    def delay(self, frame: pl.DataFrame) -> np.ndarray:
        return self.regressor.predict(self._matrix(frame), **self._predict_kwargs())

    def predict_both(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(p_late, delay) of every row: one feature matrix, one call per estimator."""
        x = self._matrix(frame)
        kwargs = self._predict_kwargs()
        return (self.classifier.predict_proba(x, **kwargs)[:, 1],
                self.regressor.predict(x, **kwargs))  # fmt: skip

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """Per row and feature: contribution to the log-odds of being late."""
        x = self._matrix(frame)
        if self.kind == "lightgbm":
            return self.classifier.predict(x, pred_contrib=True)[:, : len(self.features)]
        imputer, scaler, logistic = (s for _, s in self.classifier.steps)
        z = scaler.transform(imputer.transform(x))
        return z * logistic.coef_[0]

    def drivers(self, frame: pl.DataFrame) -> list[dict]:
        """The main drivers: mean absolute contribution of each feature, largest first."""
        mean_abs = np.abs(self.contributions(frame)).mean(axis=0)
        order = np.argsort(-mean_abs)
        return [
            {"feature": self.features[i], "weight": round(float(mean_abs[i]), 4)}
            for i in order
            if mean_abs[i] > 0
        ]

    def reasons(
        self, frame: pl.DataFrame, top: int = TOP_REASONS,
        gettext: Callable[[str], str] | None = None,
    ) -> list[str]:  # fmt: skip
        """Per row: its `top` features pushing most towards "late", each as a sentence in
        the current language (or `gettext`'s) with its contribution to the log-odds,
        joined by "; ": 'History: paid 5.9 days late on average (+1.11)'."""
        contrib = self.contributions(frame)
        x = self._matrix(frame)
        order = np.argsort(-contrib, axis=1)[:, :top]
        out = []
        for r in range(len(frame)):
            parts = []
            for i in order[r]:
                if contrib[r, i] <= 0:
                    break
                text = feature_text(self.features[i], float(x[r, i]), gettext)
                parts.append(f"{text} (+{contrib[r, i]:.2f})")
            out.append("; ".join(parts))
        return out

    # --- storage ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> FittedModel:
        # Artifacts are written by `train_model` of this database only (trusted source).
        return pickle.loads(data)  # noqa: S301


def _estimators(kind: str) -> tuple[Any, Any]:
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        return LGBMClassifier(**LGBM_CLASSIFIER), LGBMRegressor(**LGBM_REGRESSOR)
    if kind == "logistic":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        def pipe(last: Any) -> Pipeline:
            return Pipeline(
                [("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                 ("scale", StandardScaler()), ("model", last)]
            )  # fmt: skip

        return pipe(LogisticRegression(C=0.5, max_iter=2000)), pipe(Ridge(alpha=1.0))
    raise ValueError(f"unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")


def residual_table(delays: pl.Series) -> list[tuple[int, float]]:
    """Mean remaining delay of invoices still unpaid `edge` days after their due date,
    for each edge of RESIDUAL_EDGES (set-based: a cross join of delays and edges)."""
    edges = pl.DataFrame({"edge": list(RESIDUAL_EDGES)})
    table = (
        pl.DataFrame({"delay": delays.drop_nulls()})
        .join(edges, how="cross")
        .filter(pl.col("delay") > pl.col("edge"))
        .group_by("edge")
        .agg(residual=(pl.col("delay") - pl.col("edge")).mean())
        .sort("edge")
    )
    known = dict(zip(table["edge"].to_list(), table["residual"].to_list(), strict=True))
    out, last = [], 30.0
    for edge in RESIDUAL_EDGES:
        last = float(known.get(edge, last))
        out.append((edge, last))
    return out


def fit(
    frame: pl.DataFrame, kind: str, as_of: dt.date, features: tuple[str, ...] = FEATURES
) -> FittedModel:
    """Fit on a frame of `features` (default all FEATURES) plus `late` (bool) and
    `delay_days` (null: censored)."""
    classifier, regressor = _estimators(kind)
    labelled = frame.filter(pl.col("late").is_not_null())
    if labelled.height < 10 or labelled["late"].n_unique() < 2:
        raise ValueError("not enough settled invoices to train (need both late and on time)")
    x = labelled.select(features).to_numpy().astype(np.float64)
    classifier.fit(x, labelled["late"].to_numpy())
    timed = labelled.filter(pl.col("delay_days").is_not_null())
    y = timed["delay_days"].clip(-DELAY_CLIP, DELAY_CLIP).to_numpy().astype(np.float64)
    regressor.fit(timed.select(features).to_numpy().astype(np.float64), y)
    params = LGBM_CLASSIFIER if kind == "lightgbm" else {"C": 0.5, "alpha": 1.0}
    return FittedModel(
        kind=kind,
        as_of=as_of,
        features=tuple(features),
        classifier=classifier,
        regressor=regressor,
        residuals=residual_table(timed["delay_days"]),
        params={"estimators": dict(params), "rows": labelled.height, "timed": timed.height},
    )


def training_frame(ledger: Ledger, as_of: dt.date) -> pl.DataFrame:
    """Invoices issued before `as_of` whose outcome was known on `as_of`, with their
    features as of their issue date and their targets as known on `as_of`."""
    inv = with_targets(ledger.invoices).filter(pl.col("issue_date") < as_of)
    settled_before = pl.col("settled_date").is_not_null() & (pl.col("settled_date") < as_of)
    inv = inv.with_columns(
        late=pl.when(settled_before)
        .then(pl.col("late"))
        .when(pl.col("due_date") < as_of)
        .then(pl.lit(True)),
        delay_days=pl.when(settled_before).then(pl.col("delay_days")),
    ).filter(pl.col("late").is_not_null())
    rows = inv.select("document_id", pl.col("issue_date").alias("cutoff"))
    feats = compute_features(ledger, rows)
    return feats.join(inv.select("document_id", "late", "delay_days"), on="document_id")


def train(ledger: Ledger, as_of: dt.date, kind: str = "lightgbm") -> FittedModel:
    started = time.perf_counter()
    frame = training_frame(ledger, as_of)
    model = fit(frame, kind, as_of)
    # Invoices still unpaid on as_of count in the residual delays with what is known of
    # them (at least as_of - due): without them, the slowest payers would be left out.
    unpaid = ledger.invoices.filter(
        (pl.col("issue_date") < as_of)
        & (pl.col("due_date") < as_of)
        & (pl.col("settled_date").is_null() | (pl.col("settled_date") >= as_of))
    ).select(delay_days=(pl.lit(as_of) - pl.col("due_date")).dt.total_days())
    known = frame.filter(pl.col("delay_days").is_not_null()).select(
        pl.col("delay_days").cast(pl.Int64)
    )
    model.residuals = residual_table(pl.concat([known, unpaid])["delay_days"])
    model.metrics["train_seconds"] = round(time.perf_counter() - started, 3)
    model.metrics["train_rows"] = frame.height
    model.metrics["late_rate"] = round(float(frame["late"].mean()), 4)  # type: ignore[arg-type]
    return model


# --- scoring open invoices -------------------------------------------------------------


def _residual_expr(residuals: list[tuple[int, float]], elapsed: pl.Expr) -> pl.Expr:
    expr: pl.Expr = pl.lit(residuals[0][1])
    for edge, value in residuals:
        expr = pl.when(elapsed >= edge).then(pl.lit(value)).otherwise(expr)
    return expr


def score_open_invoices(
    ledger: Ledger,
    model: FittedModel,
    as_of: dt.date,
    reasons: bool = False,
    document_ids: pl.Series | list[int] | None = None,
) -> pl.DataFrame:
    """Every invoice open on `as_of` (issued on or before, not settled on or before), scored;
    only those of `document_ids` when given (the features of an invoice do not depend on
    which other invoices are scored: same scores, less work).

    Columns: document_id, invoice_number, customer_id (the customer's code), currency,
    due_date, open_minor, p_late, predicted_days_late, predicted_payment_date, prior_source
    (+ top_reasons).
    """
    inv = ledger.invoices
    wanted = (pl.col("issue_date") <= as_of) & (
        pl.col("settled_date").is_null() | (pl.col("settled_date") > as_of)
    )
    if document_ids is not None:
        wanted = wanted & pl.col("document_id").is_in(pl.Series(document_ids).implode())
    open_inv = inv.filter(wanted)
    if open_inv.is_empty():
        return _empty_scores(reasons)
    rows = open_inv.select("document_id", cutoff=pl.lit(as_of))
    feats = compute_features(ledger, rows).join(
        open_inv.select("document_id", "number", "customer_id", "currency", "due_date"),
        on="document_id",
    )
    p, predicted_delay = model.predict_both(feats)
    delay = np.rint(predicted_delay).astype(np.int64)
    elapsed = (pl.lit(as_of) - pl.col("due_date")).dt.total_days()
    scored = feats.with_columns(p_raw=pl.Series(p), delay=pl.Series(delay)).with_columns(
        predicted=pl.col("due_date") + pl.duration(days=pl.col("delay")),
        residual=_residual_expr(model.residuals, elapsed).ceil().cast(pl.Int64).clip(1),
    )
    scored = scored.with_columns(
        p_late=pl.when(pl.col("due_date") < as_of).then(1.0).otherwise(pl.col("p_raw")),
        predicted_payment_date=pl.when(pl.col("predicted") > as_of)
        .then(pl.col("predicted"))
        .otherwise(pl.lit(as_of) + pl.duration(days=pl.col("residual"))),
    ).with_columns(
        predicted_days_late=(pl.col("predicted_payment_date") - pl.col("due_date"))
        .dt.total_days()
        .clip(lower_bound=0)
    )
    if reasons:
        scored = scored.with_columns(top_reasons=pl.Series(model.reasons(feats)))
    open_minor = _open_amounts(ledger, open_inv, as_of)
    codes = ledger.customers.select("customer_id", pl.col("code").alias("customer_code"))
    out = (
        scored.join(open_minor, on="document_id")
        .join(codes, on="customer_id", how="left")
        .select(
            "document_id",
            pl.col("number").alias("invoice_number"),
            pl.col("customer_code").alias("customer_id"),
            "currency",
            "due_date",
            "open_minor",
            pl.col("p_late").round(4),
            "predicted_days_late",
            "predicted_payment_date",
            "prior_source",
            *(["top_reasons"] if reasons else []),
        )
    )
    return out.sort("predicted_payment_date", "invoice_number")


def _open_amounts(ledger: Ledger, open_inv: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Open amount on `as_of` = amount - allocations dated on or before it."""
    allocated = (
        ledger.allocations.filter(pl.col("date") <= as_of)
        .group_by("invoice_id")
        .agg(pl.col("amount_minor").sum().alias("allocated"))
    )
    return (
        open_inv.select("document_id", "amount_minor")
        .join(allocated, left_on="document_id", right_on="invoice_id", how="left")
        .select("document_id", open_minor=pl.col("amount_minor") - pl.col("allocated").fill_null(0))
    )


def _empty_scores(reasons: bool) -> pl.DataFrame:
    schema = {
        "document_id": pl.Int64, "invoice_number": pl.String, "customer_id": pl.String,
        "currency": pl.String, "due_date": pl.Date, "open_minor": pl.Int64,
        "p_late": pl.Float64, "predicted_days_late": pl.Int64,
        "predicted_payment_date": pl.Date, "prior_source": pl.String,
    }  # fmt: skip
    if reasons:
        schema["top_reasons"] = pl.String
    return pl.DataFrame(schema=schema)


PREDICTION_COLUMNS = (
    "invoice_number", "customer_id", "p_late", "predicted_days_late", "predicted_payment_date"
)  # fmt: skip


# --- evaluation ------------------------------------------------------------------------


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None
    return round(float(roc_auc_score(y, score)), 4)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Predicted vs observed late rate by bins of predicted probability (width 1/bins)."""
    frame = pl.DataFrame({"y": y.astype(np.float64), "p": p}).with_columns(
        bin=(pl.col("p") * bins).floor().clip(0, bins - 1).cast(pl.Int64)
    )
    table = (
        frame.group_by("bin")
        .agg(n=pl.len(), predicted=pl.col("p").mean(), observed=pl.col("y").mean())
        .sort("bin")
    )
    return [
        {"range": f"{r['bin'] / bins:.1f}-{(r['bin'] + 1) / bins:.1f}", "n": r["n"],
         "predicted": round(r["predicted"], 3), "observed": round(r["observed"], 3)}
        for r in table.iter_rows(named=True)
    ]  # fmt: skip


def model_features(without: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """FEATURES minus `without` (ValueError naming an unknown feature)."""
    unknown = [f for f in without if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown feature(s) {', '.join(unknown)}: expected among "
                         f"{', '.join(FEATURES)}")  # fmt: skip
    return tuple(f for f in FEATURES if f not in set(without))


def evaluate(
    ledger: Ledger, split: dt.date, kind: str = "lightgbm",
    without: tuple[str, ...] | list[str] = (),
) -> dict:  # fmt: skip
    """Time split: train on the settled invoices issued before `split` (with their outcomes),
    test on the settled invoices issued on or after it; every feature is as of the
    invoice's own issue date. `without`: features left out (to measure what they bring).
    Baseline: the customer's average days late (and late rate) over its invoices settled
    before the issue date, its prior when it has none."""
    inv = with_targets(ledger.invoices).filter(pl.col("settled_date").is_not_null())
    rows = inv.select("document_id", pl.col("issue_date").alias("cutoff"))
    feats = compute_features(ledger, rows).join(
        inv.select("document_id", "issue_date", "late", "delay_days", "days_late"),
        on="document_id",
    )
    train_f = feats.filter(pl.col("issue_date") < split)
    test_f = feats.filter(pl.col("issue_date") >= split)
    if train_f.is_empty() or test_f.is_empty():
        raise ValueError("the split leaves no settled invoice on one side")
    started = time.perf_counter()
    model = fit(train_f, kind, split, model_features(without))
    seconds = time.perf_counter() - started
    y = test_f["late"].to_numpy().astype(np.int64)
    days = test_f["days_late"].to_numpy().astype(np.float64)
    p = model.p_late(test_f)
    predicted_days = np.clip(np.rint(model.delay(test_f)), 0, None)
    # Baselines, point in time: the customer's own averages (prior when none).
    base_days = test_f["days_late_shrunk"].to_numpy()
    base_rate = test_f["late_rate_shrunk"].to_numpy()
    # The usual static baseline: each customer's average over the training period.
    static = train_f.join(inv.select("document_id", "customer_id"), on="document_id")
    per_customer = static.group_by("customer_id").agg(
        avg_days=pl.col("days_late").mean(), avg_late=pl.col("late").mean()
    )
    static_test = (
        test_f.join(inv.select("document_id", "customer_id"), on="document_id")
        .join(per_customer, on="customer_id", how="left")
        .with_columns(
            pl.col("avg_days").fill_null(float(train_f["days_late"].mean())),  # type: ignore[arg-type]
            pl.col("avg_late").fill_null(float(train_f["late"].mean())),  # type: ignore[arg-type]
        )
    )
    return {
        "kind": kind,
        "split": split.isoformat(),
        "without": list(without),
        "train_invoices": train_f.height,
        "test_invoices": test_f.height,
        "test_late_rate": round(float(y.mean()), 4),
        "auc": _auc(y, p),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "mae_days_late": round(float(np.mean(np.abs(predicted_days - days))), 3),
        "baseline": {
            "auc_customer_late_rate": _auc(y, base_rate),
            "mae_customer_avg_days_late": round(float(np.mean(np.abs(base_days - days))), 3),
            "auc_static_customer_avg": _auc(y, static_test["avg_late"].to_numpy()),
            "mae_static_customer_avg": round(
                float(np.mean(np.abs(static_test["avg_days"].to_numpy() - days))), 3
            ),
        },
        "calibration": calibration_table(y, p),
        "drivers": model.drivers(test_f)[:10],
        "fit_seconds": round(seconds, 3),
    }


# --- use cases: the database ----------------------------------------------------------


def read_ledger(db_url: str | None) -> Ledger:
    with unit_of_work(db_url) as conn:
        return load_ledger(conn)


def train_model(db_url: str | None, as_of: dt.date, kind: str = "lightgbm") -> dict:
    """Train as of `as_of` and store the model; returns its id, params and metrics."""
    ledger = read_ledger(db_url)
    model = train(ledger, as_of, kind)
    with unit_of_work(db_url) as conn:
        model_id = conn.execute(
            insert(PaymentModel)
            .values(
                as_of=as_of, kind=kind, params=model.params, metrics=model.metrics,
                artifact=model.to_bytes(),
            )
            .returning(PaymentModel.id)
        ).scalar_one()  # fmt: skip
    return {"id": model_id, "as_of": as_of.isoformat(), "kind": kind,
            "params": model.params, "metrics": model.metrics}  # fmt: skip


def load_model(conn: Connection, as_of: dt.date | None = None) -> FittedModel | None:
    """The latest stored model trained as of `as_of` or before (any when None)."""
    stmt = select(PaymentModel.artifact).order_by(PaymentModel.as_of.desc(), PaymentModel.id.desc())
    if as_of is not None:
        stmt = stmt.where(PaymentModel.as_of <= as_of)
    data = conn.execute(stmt.limit(1)).scalar_one_or_none()
    return None if data is None else FittedModel.from_bytes(data)


def model_for(db_url: str | None, ledger: Ledger, as_of: dt.date) -> FittedModel:
    """The stored model valid on `as_of`, else one trained now as of `as_of` (not stored)."""
    with unit_of_work(db_url) as conn:
        model = load_model(conn, as_of)
    return model if model is not None else train(ledger, as_of)


def predict(db_url: str | None, as_of: dt.date, reasons: bool = False) -> pl.DataFrame:
    ledger = read_ledger(db_url)
    with unit_of_work(db_url) as conn:
        model = load_model(conn, as_of)
    if model is None:
        raise LookupError("no model trained as of this day: run `encours model train` first")
    return score_open_invoices(ledger, model, as_of, reasons=reasons)


def report(
    db_url: str | None, split: dt.date | None, kind: str = "lightgbm",
    without: tuple[str, ...] | list[str] = (),
) -> dict:  # fmt: skip
    """Time-split evaluation; default split: the issue date leaving the newest 25 % of
    the settled invoices for the test. `without`: features left out of the model."""
    model_features(without)  # unknown names refused before the ledger is read
    ledger = read_ledger(db_url)
    if split is None:
        settled = ledger.invoices.filter(pl.col("settled_date").is_not_null())
        if settled.is_empty():
            raise ValueError("no settled invoice to evaluate on")
        split = settled["issue_date"].sort()[int(settled.height * 0.75)]
    return evaluate(ledger, split, kind, without)
