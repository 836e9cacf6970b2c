"""Risk benchmark: scoring and monitoring, the order check latency, model training.

    .venv/bin/python bench/bench_risk.py [--small] [--out FILE]

1. Portfolio: `encours.generate` (default 50,000 customers / 1,000,000 invoices over 24
   months to 2025-06-30), imported into a fresh SQLite database; as of 2025-06-30.
2. Scoring: `encours.risk.classes.assess` (compute and store every customer's class) in
   one transaction; then `encours.risk.monitor.run_monitor` (when the module is installed)
   in another. Target: both together under 30 s.
   References: the ledger part of the behaviour features (per customer: days past due of
   the oldest overdue invoice, open disputed invoices, share of the invoices settled in the
   last 12 months that were settled late, days since the last payment) as one DuckDB SQL
   query and a pandas version, over the same tables read from the database beforehand;
   `max_days_overdue` and `open_disputes` are compared with encours' own features.
3. Order check: `encours.risk.order_check.check_order` for `--orders` random customers
   (each its own call on a warm connection), p50 / p95 / p99 in ms; reference: a plain
   indexed SELECT of the same customer's open invoice total
   (`documents` by customer, through its index) on the same connection.
4. Model training on `--train-invoices` invoices (a second portfolio, 20 invoices per
   customer): `encours.risk.model.train_model` (LightGBM, reading the ledger, point-in-time
   features, both estimators, storing the model). References: scikit-learn's
   LogisticRegression and a LightGBM classifier fitted alone on the same feature matrix.

Prints one JSON document on stdout (and writes it to --out). Not a timed test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

END = dt.date(2025, 6, 30)
TARGETS = {"assess_plus_monitor_seconds_max": 30.0, "applies_at": "50k customers / 1M invoices"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def portfolio(work: Path, customers: int, invoices: int, seed: int) -> tuple[str, dict]:
    from encours.generate import generate_portfolio
    from encours.services.imports import import_file
    from encours.store.db import get_engine

    data = work / "data"
    t0 = time.perf_counter()
    generate_portfolio(data, customers, invoices, seed, END)
    info = {"customers": customers, "invoices": invoices,
            "generate_seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
    url = f"sqlite:///{work / 'encours.sqlite'}"
    get_engine(url)
    t0 = time.perf_counter()
    for kind in ("customers", "invoices", "payments"):
        import_file(data / f"{kind}.csv", kind, db_url=url, actor="bench")
    info["import_seconds"] = round(time.perf_counter() - t0, 2)
    return url, info


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def latency(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"p50_ms": round(pct(ms, 50), 3), "p95_ms": round(pct(ms, 95), 3),
            "p99_ms": round(pct(ms, 99), 3), "max_ms": round(max(ms), 3)}  # fmt: skip


# -- references: ledger features ---------------------------------------------------------


def read_tables(db_path: Path) -> dict:
    import pandas as pd

    con = sqlite3.connect(db_path)
    try:
        docs = pd.read_sql("SELECT id, customer_id, kind, status, issue_date, due_date, "
                           "amount_minor, disputed FROM documents", con)  # fmt: skip
        alloc = pd.read_sql("SELECT invoice_id, payment_id, date, amount_minor FROM allocations",
                            con)  # fmt: skip
        pays = pd.read_sql("SELECT customer_id, date FROM payments", con)
    finally:
        con.close()
    for frame, cols in ((docs, ("issue_date", "due_date")), (alloc, ("date",)),
                        (pays, ("date",))):  # fmt: skip
        for c in cols:
            frame[c] = pd.to_datetime(frame[c])
    docs["disputed"] = docs["disputed"].fillna(0).astype(bool)
    alloc["invoice_id"] = alloc["invoice_id"].astype("Int64")
    return {"documents": docs, "allocations": alloc, "payments": pays}


DUCKDB_FEATURES = """
WITH alloc AS (SELECT * FROM allocations WHERE date <= $as_of AND invoice_id IS NOT NULL),
inv AS (
    SELECT id, customer_id, due_date, amount_minor, disputed FROM documents
    WHERE kind = 'invoice' AND status <> 'cancelled' AND issue_date <= $as_of
), paid AS (SELECT invoice_id, SUM(amount_minor) AS s FROM alloc GROUP BY invoice_id),
open AS (
    SELECT i.customer_id,
           MAX(CASE WHEN i.due_date < $as_of THEN date_diff('day', i.due_date, $as_of)
               ELSE 0 END) AS max_days_overdue,
           SUM(CASE WHEN i.disputed AND i.amount_minor - COALESCE(p.s, 0) > 0 THEN 1 ELSE 0 END)
               AS open_disputes
    FROM inv i LEFT JOIN paid p ON p.invoice_id = i.id
    WHERE i.amount_minor - COALESCE(p.s, 0) <> 0
    GROUP BY i.customer_id
), running AS (
    SELECT a.invoice_id, a.date,
           SUM(a.amount_minor) OVER (PARTITION BY a.invoice_id ORDER BY a.date
                                     ROWS UNBOUNDED PRECEDING) AS cum
    FROM alloc a
), settled AS (
    SELECT i.customer_id, i.due_date, MIN(r.date) AS settled
    FROM running r JOIN inv i ON i.id = r.invoice_id
    WHERE r.cum >= i.amount_minor GROUP BY i.id, i.customer_id, i.due_date
), late AS (
    SELECT customer_id, 100.0 * AVG(CASE WHEN settled > due_date THEN 1 ELSE 0 END)
           AS late_share
    FROM settled WHERE settled > $as_of - INTERVAL 12 MONTH GROUP BY customer_id
), last_pay AS (
    SELECT customer_id, date_diff('day', MAX(date), $as_of) AS days_since_payment
    FROM payments WHERE date <= $as_of GROUP BY customer_id
)
SELECT c.customer_id, o.max_days_overdue, o.open_disputes, l.late_share,
       p.days_since_payment
FROM (SELECT DISTINCT customer_id FROM documents) c
LEFT JOIN open o USING (customer_id) LEFT JOIN late l USING (customer_id)
LEFT JOIN last_pay p USING (customer_id)
"""


def duckdb_features(tables: dict, as_of: dt.date, repeat: int) -> tuple[list[float], object]:
    import duckdb

    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(f"{name}_df", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
    times, frame = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = con.execute(DUCKDB_FEATURES, {"as_of": as_of}).pl()
        times.append(time.perf_counter() - t0)
    return times, frame


def pandas_features(tables: dict, as_of: dt.date) -> object:
    import pandas as pd

    day = pd.Timestamp(as_of)
    docs, alloc, pays = tables["documents"], tables["allocations"], tables["payments"]
    alloc = alloc[(alloc["date"] <= day) & alloc["invoice_id"].notna()]
    inv = docs[(docs["kind"] == "invoice") & (docs["status"] != "cancelled")
               & (docs["issue_date"] <= day)]  # fmt: skip
    paid = alloc.groupby("invoice_id")["amount_minor"].sum()
    inv = inv.assign(open_minor=inv["amount_minor"] - inv["id"].map(paid).fillna(0))
    op = inv[inv["open_minor"] != 0]
    op = op.assign(
        overdue=(day - op["due_date"]).dt.days.clip(lower=0),
        dispute=(op["disputed"] & (op["open_minor"] > 0)).astype(int),
    )
    open_f = op.groupby("customer_id").agg(max_days_overdue=("overdue", "max"),
                                           open_disputes=("dispute", "sum"))  # fmt: skip
    a = alloc.sort_values(["invoice_id", "date"])
    a = a.assign(cum=a.groupby("invoice_id")["amount_minor"].cumsum())
    a = a.merge(inv[["id", "customer_id", "due_date", "amount_minor"]], left_on="invoice_id",
                right_on="id", suffixes=("", "_inv"))  # fmt: skip
    settled = (a[a["cum"] >= a["amount_minor_inv"]].groupby("invoice_id")
               .agg(customer_id=("customer_id", "first"), due=("due_date", "first"),
                    settled=("date", "min")))  # fmt: skip
    settled = settled[settled["settled"] > day - pd.DateOffset(months=12)]
    late = (settled["settled"] > settled["due"]).groupby(settled["customer_id"]).mean() * 100
    last = pays[pays["date"] <= day].groupby("customer_id")["date"].max()
    out = pd.DataFrame(index=pd.Index(docs["customer_id"].unique(), name="customer_id"))
    out = out.join(open_f).join(late.rename("late_share"))
    out["days_since_payment"] = (day - last.reindex(out.index)).dt.days
    return out.reset_index()


def compare_features(encours: object, ref: object) -> dict:
    import polars as pl

    cols = ["max_days_overdue", "open_disputes"]
    a = encours.select("customer_id", *cols)
    b = ref.select("customer_id", *[pl.col(c).cast(pl.Float64) for c in cols])
    joined = a.join(b, on="customer_id", how="inner", suffix="_ref").fill_null(0)
    bad = joined.filter(pl.any_horizontal([pl.col(c) != pl.col(f"{c}_ref") for c in cols]))
    return {"compared": cols, "customers": joined.height, "mismatches": bad.height,
            "ok": bad.height == 0}  # fmt: skip


# -- steps -------------------------------------------------------------------------------


def bench_scoring(
    url: str,
    db_path: Path,
    as_of: dt.date,
    repeat: int,
    train_first: bool = True,
    references: bool = True,
) -> dict:
    import polars as pl

    from encours.risk import behaviour
    from encours.risk.classes import assess
    from encours.store.db import get_engine

    engine = get_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        frame = assess(conn, as_of)
    assess_s = time.perf_counter() - t0
    out: dict = {"assess": {"seconds": round(assess_s, 2), "customers": frame.height,
                            "by_class": dict(frame.group_by("risk_class").len()
                                             .sort("risk_class").iter_rows())}}  # fmt: skip
    monitor_s = 0.0
    if train_first:
        # the payment model the monitor's predicted_late rule scores with (not in the target)
        from encours.risk.model import train_model

        t0 = time.perf_counter()
        train_model(url, as_of, "lightgbm")
        out["train_model_seconds"] = round(time.perf_counter() - t0, 2)
    if importlib.util.find_spec("encours.risk.monitor") is not None:
        from encours.risk.monitor import run_monitor

        t0 = time.perf_counter()
        with engine.begin() as conn:
            report = run_monitor(conn, as_of, actor="bench")
        monitor_s = time.perf_counter() - t0
        out["monitor"] = {"seconds": round(monitor_s, 2), "counts": report.counts,
                          "skipped": report.skipped,
                          "rule_seconds": getattr(report, "timings", None)}  # fmt: skip
    else:
        out["monitor"] = {"seconds": None, "note": "encours.risk.monitor not installed"}
    total = assess_s + monitor_s
    out["assess_plus_monitor_seconds"] = round(total, 2)
    out["meets_target"] = total <= TARGETS["assess_plus_monitor_seconds_max"]
    if not references:
        return out

    with engine.connect() as conn:
        t0 = time.perf_counter()
        feats = behaviour.behaviour_features(conn, as_of)
        feats_s = time.perf_counter() - t0
    tables = read_tables(db_path)
    d_times, d_frame = duckdb_features(tables, as_of, repeat)
    p_times, p_frame = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        p_frame = pandas_features(tables, as_of)
        p_times.append(time.perf_counter() - t0)
    out["features_references"] = {
        "encours_behaviour_features_seconds": round(feats_s, 2),
        "duckdb_sql": {"seconds": round(min(d_times), 3),
                       "check": compare_features(feats, d_frame)},
        "pandas": {"seconds": round(min(p_times), 3),
                   "check": compare_features(feats, pl.from_pandas(p_frame))},
        "ratio_assess_over_duckdb": round(assess_s / min(d_times), 1),
        "ratio_assess_over_pandas": round(assess_s / min(p_times), 1),
        "ratio_behaviour_features_over_duckdb": round(feats_s / min(d_times), 1),
        "note": "references compute 4 of the 8 behaviour features (ledger part); assess also "
                "computes the KPIs twice (trend), statements, reasons, and writes the rows",
    }  # fmt: skip
    return out


def bench_orders(url: str, as_of: dt.date, n: int, seed: int) -> dict:
    from decimal import Decimal

    from sqlalchemy import text

    from encours.risk.order_check import check_order
    from encours.store.db import get_engine

    engine = get_engine(url)
    with engine.connect() as conn:
        customers = conn.execute(text("SELECT id, code FROM customers")).all()
        rng = random.Random(seed)
        picks = [rng.choice(customers) for _ in range(n)]
        amounts = [Decimal(rng.randrange(100, 50_000)) for _ in range(n)]
        check_order(conn, picks[0][1], amounts[0], as_of)  # warm-up
        times, decisions = [], {}
        for (_cid, code), amount in zip(picks, amounts, strict=True):
            t0 = time.perf_counter()
            decision = check_order(conn, code, amount, as_of)
            times.append(time.perf_counter() - t0)
            decisions[decision.decision] = decisions.get(decision.decision, 0) + 1
        ref_sql = text(
            "SELECT COALESCE(SUM(amount_minor), 0), COUNT(*) FROM documents "
            "WHERE customer_id = :cid AND kind = 'invoice' AND status <> 'cancelled' "
            "AND issue_date <= :as_of"
        )
        ref_times = []
        for cid, _code in picks:
            t0 = time.perf_counter()
            conn.execute(ref_sql, {"cid": cid, "as_of": as_of}).one()
            ref_times.append(time.perf_counter() - t0)
    # the check as `encours check order` and the API run it: checked and logged
    # (`order_checks`, one insert) in one transaction, committed
    logged = []
    from encours.risk.monitor import check_and_record_order

    for (_cid, code), amount in zip(picks, amounts, strict=True):
        t0 = time.perf_counter()
        with engine.begin() as conn:
            check_and_record_order(conn, code, amount, as_of, "bench")
        logged.append(time.perf_counter() - t0)
    enc, ref = latency(times), latency(ref_times)
    return {
        "orders": n, "decisions": decisions, "check_order": enc,
        "check_and_record_order_committed": latency(logged),
        "reference_indexed_select": ref,
        "ratio_p99": round(enc["p99_ms"] / ref["p99_ms"], 1),
        "ratio_p50": round(enc["p50_ms"] / ref["p50_ms"], 1),
    }  # fmt: skip


def bench_training(work: Path, invoices: int, seed: int) -> dict:
    import numpy as np
    import polars as pl

    from encours.risk.features import FEATURES
    from encours.risk.model import read_ledger, train_model, training_frame

    url, info = portfolio(work, max(1, invoices // 20), invoices, seed)
    as_of = END
    t0 = time.perf_counter()
    trained = train_model(url, as_of, "lightgbm")
    total = time.perf_counter() - t0
    # the same feature matrix, for the references (not timed as part of them)
    t0 = time.perf_counter()
    ledger = read_ledger(url)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = training_frame(ledger, as_of)
    features_s = time.perf_counter() - t0
    labelled = frame.filter(pl.col("late").is_not_null())
    x = labelled.select(FEATURES).to_numpy().astype(np.float64)
    y = labelled["late"].to_numpy()
    from lightgbm import LGBMClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from encours.risk.model import LGBM_CLASSIFIER

    # imputed and standardized as encours' own logistic model does (not timed)
    xi = SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(x)
    xi = StandardScaler().fit_transform(xi)
    t0 = time.perf_counter()
    LogisticRegression(C=0.5, max_iter=2000).fit(xi, y)
    logit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    LGBMClassifier(**LGBM_CLASSIFIER).fit(x, y)
    lgbm_s = time.perf_counter() - t0
    return {
        "portfolio": info, "rows": labelled.height, "features": len(FEATURES),
        "train_model_seconds": round(total, 2),
        "breakdown": {"read_ledger_seconds": round(read_s, 2),
                      "training_frame_seconds": round(features_s, 2),
                      "metrics_train_seconds": trained["metrics"].get("train_seconds")},
        "reference_sklearn_logistic_fit_seconds": round(logit_s, 3),
        "reference_lightgbm_classifier_fit_seconds": round(lgbm_s, 3),
        "ratio_over_logistic_fit": round(total / logit_s, 1),
        "ratio_over_lightgbm_fit": round(total / lgbm_s, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="5,000 customers / 100,000 invoices, 500 orders, "
                             "training on 20,000 invoices")  # fmt: skip
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--train-invoices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--skip", default="", help="comma list: scoring,orders,training")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--no-model",
        action="store_true",
        help="monitor without a trained payment model (predicted_late skipped)",
    )
    parser.add_argument(
        "--no-references",
        action="store_true",
        help="scoring: skip the DuckDB / pandas feature references",
    )
    args = parser.parse_args()
    if args.small:
        args.customers, args.invoices = 5_000, 100_000
        args.orders, args.train_invoices = 500, 20_000
    skip = set(filter(None, args.skip.split(",")))
    work = args.work or Path(tempfile.mkdtemp(prefix="encours-bench-risk."))
    result: dict = {"benchmark": "risk", "targets": TARGETS, "as_of": END.isoformat(),
                    "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()}  # fmt: skip
    try:
        main_dir = work / "portfolio"
        log(f"portfolio: {args.customers} customers, {args.invoices} invoices")
        url, info = portfolio(main_dir, args.customers, args.invoices, args.seed)
        result["portfolio"] = info
        if "scoring" not in skip:
            log("scoring: assess + monitor, references")
            result["scoring"] = bench_scoring(url, main_dir / "encours.sqlite", END, args.repeat,
                                              train_first=not args.no_model,
                                              references=not args.no_references)  # fmt: skip
        if "orders" not in skip:
            log(f"order check: {args.orders} orders")
            result["order_check"] = bench_orders(url, END, args.orders, args.seed)
        if "training" not in skip:
            log(f"model training on {args.train_invoices} invoices")
            result["training"] = bench_training(work / "training", args.train_invoices, args.seed)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
