"""Dunning benchmark: a full dunning run and the email send throughput, against references.

    .venv/bin/python bench/bench_dunning.py [--small] [--send 200] [--out FILE]

1. Portfolio: `encours.generate` (default 130,000 customers / 1,000,000 invoices issued over
   the 8 months before 2025-06-30), imported into a fresh SQLite database. The run is made
   `--lag-days` (31) after the generator's end date, so that what was open at the end is
   now overdue: about 50,000 customers have overdue invoices (counted in the output).
2. `encours.collections.engine.run_dunning(dry_run=False)` in one transaction, committed;
   its own timings split plan / render / write (RunResult.timings). SMTP is not part of it.
3. References for the planning step (the level of each customer: the most overdue level
   reached by its open invoices, netted of its unapplied cash and credit notes, policy
   `standard`, no earlier communication): one DuckDB SQL query, and a straightforward
   pandas version, over the same tables (read from the database before timing). The
   customer -> level map of both is compared with the plan of encours.
4. Send throughput: `encours.collections.outbox.send_pending(limit=N)` of N approved emails
   (text + HTML + the statement-of-account PDF encours attaches) to an aiosmtpd server on
   127.0.0.1 (bench/_smtp_sink.py, its own process); reference: a bare smtplib loop sending
   the very same N messages (the raw bytes the server received) over one connection.

Prints one JSON document on stdout (and writes it to --out). Not a timed test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _pg import free_port  # noqa: E402

END = dt.date(2025, 6, 30)
TARGETS = {"dunning_run_seconds_max": 60.0, "applies_at_customers_overdue": 50_000}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- portfolio ---------------------------------------------------------------------------


def build_portfolio(work: Path, customers: int, invoices: int, months: int, seed: int) -> dict:
    from encours.generate import generate_portfolio
    from encours.services.imports import import_file
    from encours.store.db import get_engine

    data = work / "data"
    t0 = time.perf_counter()
    summary = generate_portfolio(data, customers, invoices, seed, END, months=months)
    out = {"generate_seconds": round(time.perf_counter() - t0, 2)}
    url = f"sqlite:///{work / 'encours.sqlite'}"
    get_engine(url)
    for kind in ("customers", "invoices", "payments"):
        t0 = time.perf_counter()
        report = import_file(data / f"{kind}.csv", kind, db_url=url, actor="bench")
        out[f"import_{kind}_seconds"] = round(time.perf_counter() - t0, 2)
        out[f"{kind}_rows"] = report.rows
    out["open_invoices_at_end"] = summary.to_dict()["open_invoices"]
    out["url"] = url
    return out


# -- references: the planning step -------------------------------------------------------


def read_tables(db_path: Path) -> dict:
    """documents, allocations, payments and the levels of the standard policy (pandas)."""
    import pandas as pd

    con = sqlite3.connect(db_path)
    try:
        frames = {
            "documents": pd.read_sql(
                "SELECT id, customer_id, kind, status, currency, issue_date, due_date, "
                "amount_minor, disputed FROM documents", con),
            "allocations": pd.read_sql(
                "SELECT invoice_id, payment_id, credit_note_id, date, amount_minor "
                "FROM allocations", con),
            "payments": pd.read_sql(
                "SELECT id, customer_id, currency, date, amount_minor FROM payments", con),
            "levels": pd.read_sql(
                "SELECT l.code AS level_code, l.days AS level_days, l.min_overdue_minor "
                "FROM dunning_levels l JOIN dunning_policies p ON p.id = l.policy_id "
                "WHERE p.code = 'standard'", con),
        }  # fmt: skip
    finally:
        con.close()
    for name, cols in (("documents", ("issue_date", "due_date")), ("allocations", ("date",)),
                       ("payments", ("date",))):  # fmt: skip
        for c in cols:
            frames[name][c] = pd.to_datetime(frames[name][c]).dt.date
    frames["documents"]["disputed"] = frames["documents"]["disputed"].fillna(0).astype(bool)
    for c in ("invoice_id", "payment_id", "credit_note_id"):
        frames["allocations"][c] = frames["allocations"][c].astype("Int64")
    return frames


REACHED = "(l.level_days <= {rel} AND (l.level_days >= 0 OR {rel} <= 0))"

DUCKDB_PLAN = f"""
WITH alloc AS (
    SELECT invoice_id, payment_id, credit_note_id, amount_minor FROM allocations
    WHERE date <= $as_of
), inv AS (
    SELECT d.id, d.customer_id, d.currency, $as_of - d.due_date AS rel_days,
           d.amount_minor - COALESCE(a.s, 0) AS open_minor
    FROM documents d
    LEFT JOIN (SELECT invoice_id, SUM(amount_minor) s FROM alloc GROUP BY invoice_id) a
      ON a.invoice_id = d.id
    WHERE d.kind = 'invoice' AND d.status <> 'cancelled' AND d.issue_date <= $as_of
      AND NOT COALESCE(d.disputed, false)
), dunnable AS (
    SELECT * FROM inv WHERE open_minor > 0
), leveled AS (
    SELECT i.* FROM dunnable i
    WHERE EXISTS (SELECT 1 FROM levels l WHERE {REACHED.format(rel="i.rel_days")})
), grp AS (
    SELECT customer_id, currency, MAX(rel_days) AS top_rel_days FROM leveled
    GROUP BY customer_id, currency
    QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id
                               ORDER BY MAX(rel_days) DESC, currency) = 1
), listed AS (
    SELECT g.customer_id, g.currency, g.top_rel_days, SUM(i.open_minor) AS listed_minor
    FROM grp g JOIN dunnable i ON i.customer_id = g.customer_id AND i.currency = g.currency
    WHERE (g.top_rel_days > 0 AND i.rel_days > 0)
       OR (g.top_rel_days <= 0 AND i.id IN (SELECT id FROM leveled))
    GROUP BY g.customer_id, g.currency, g.top_rel_days
), cash AS (
    SELECT p.customer_id, p.currency, SUM(p.amount_minor - COALESCE(a.s, 0)) AS amount
    FROM payments p
    LEFT JOIN (SELECT payment_id, SUM(amount_minor) s FROM alloc GROUP BY payment_id) a
      ON a.payment_id = p.id
    WHERE p.date <= $as_of GROUP BY p.customer_id, p.currency
), credit AS (
    SELECT d.customer_id, d.currency, SUM(d.amount_minor - COALESCE(a.s, 0)) AS amount
    FROM documents d
    LEFT JOIN (SELECT credit_note_id, SUM(amount_minor) s FROM alloc GROUP BY credit_note_id) a
      ON a.credit_note_id = d.id
    WHERE d.kind = 'credit_note' AND d.status <> 'cancelled' AND d.issue_date <= $as_of
    GROUP BY d.customer_id, d.currency
), net AS (
    SELECT s.customer_id, s.top_rel_days,
           s.listed_minor - COALESCE(c.amount, 0) - COALESCE(n.amount, 0) AS net_due_minor
    FROM listed s
    LEFT JOIN cash c ON c.customer_id = s.customer_id AND c.currency = s.currency
    LEFT JOIN credit n ON n.customer_id = s.customer_id AND n.currency = s.currency
)
SELECT n.customer_id, arg_max(l.level_code, l.level_days) AS level_code
FROM net n JOIN levels l
  ON {REACHED.format(rel="n.top_rel_days")} AND l.min_overdue_minor <= n.net_due_minor
WHERE n.net_due_minor > 0
GROUP BY n.customer_id
"""


def duckdb_plan(tables: dict, as_of: dt.date, repeat: int) -> tuple[list[float], dict]:
    import duckdb

    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(f"{name}_df", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = con.execute(DUCKDB_PLAN, {"as_of": as_of}).fetchall()
        times.append(time.perf_counter() - t0)
    return times, dict(result or [])


def pandas_plan(tables: dict, as_of: dt.date) -> dict:
    import pandas as pd

    docs, alloc, pays, levels = (tables[k] for k in ("documents", "allocations", "payments",
                                                      "levels"))  # fmt: skip
    alloc = alloc[alloc["date"] <= as_of]
    inv = docs[(docs["kind"] == "invoice") & (docs["status"] != "cancelled")
               & (docs["issue_date"] <= as_of) & ~docs["disputed"]]  # fmt: skip
    paid = alloc.groupby("invoice_id")["amount_minor"].sum()
    inv = inv.assign(open_minor=inv["amount_minor"] - inv["id"].map(paid).fillna(0))
    inv = inv[inv["open_minor"] > 0]
    inv = inv.assign(rel_days=(pd.Timestamp(as_of) - pd.to_datetime(inv["due_date"])).dt.days)

    def reached(level_days: pd.Series, rel: pd.Series) -> pd.Series:
        return (level_days <= rel) & ((level_days >= 0) | (rel <= 0))

    has_level = pd.Series(False, index=inv.index)
    for days in levels["level_days"]:
        has_level |= reached(pd.Series(days, index=inv.index), inv["rel_days"])
    leveled = inv[has_level]
    grp = (leveled.groupby(["customer_id", "currency"], as_index=False)["rel_days"].max()
           .rename(columns={"rel_days": "top_rel_days"})
           .sort_values(["customer_id", "top_rel_days", "currency"],
                        ascending=[True, False, True])
           .drop_duplicates("customer_id"))  # fmt: skip
    listed = inv.merge(grp, on=["customer_id", "currency"])
    keep = ((listed["top_rel_days"] > 0) & (listed["rel_days"] > 0)) | (
        (listed["top_rel_days"] <= 0) & listed["id"].isin(leveled["id"]))  # fmt: skip
    sums = (listed[keep].groupby(["customer_id", "currency", "top_rel_days"], as_index=False)
            ["open_minor"].sum())  # fmt: skip
    used_p = alloc.groupby("payment_id")["amount_minor"].sum()
    p = pays[pays["date"] <= as_of]
    p = p.assign(u=p["amount_minor"] - p["id"].map(used_p).fillna(0))
    cash = p.groupby(["customer_id", "currency"])["u"].sum()
    used_c = alloc.groupby("credit_note_id")["amount_minor"].sum()
    cn = docs[(docs["kind"] == "credit_note") & (docs["status"] != "cancelled")
              & (docs["issue_date"] <= as_of)]  # fmt: skip
    cn = cn.assign(u=cn["amount_minor"] - cn["id"].map(used_c).fillna(0))
    credit = cn.groupby(["customer_id", "currency"])["u"].sum()
    key = pd.MultiIndex.from_frame(sums[["customer_id", "currency"]])
    sums["net"] = (sums["open_minor"] - cash.reindex(key).fillna(0).to_numpy()
                   - credit.reindex(key).fillna(0).to_numpy())  # fmt: skip
    sums = sums[sums["net"] > 0]
    cand = sums.merge(levels, how="cross")
    cand = cand[reached(cand["level_days"], cand["top_rel_days"])
                & (cand["min_overdue_minor"] <= cand["net"])]  # fmt: skip
    top = cand.sort_values("level_days").drop_duplicates("customer_id", keep="last")
    return dict(zip(top["customer_id"], top["level_code"], strict=True))


def compare_plans(encours: dict, ref: dict) -> dict:
    keys = set(encours) | set(ref)
    bad = [k for k in keys if encours.get(k) != ref.get(k)]
    return {"ok": not bad, "customers_encours": len(encours), "customers_reference": len(ref),
            "mismatches": len(bad),
            "first_mismatches": [(int(k), encours.get(k), ref.get(k))
                                 for k in sorted(bad)[:5]]}  # fmt: skip


# -- send throughput ---------------------------------------------------------------------


class SmtpSink:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_smtp_sink.py"), str(self.port), str(out)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")

    def sizes(self) -> list[int]:
        path = self.out / "sizes.txt"
        return [int(x) for x in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def bench_send(url: str, as_of: dt.date, n: int, work: Path) -> dict:
    from encours.collections.outbox import send_pending
    from encours.collections.smtp import SmtpSettings

    first = SmtpSink(work / "smtp-encours")
    try:
        settings = SmtpSettings(host="127.0.0.1", port=first.port,
                                mail_from="relances@example.com")  # fmt: skip
        t0 = time.perf_counter()
        report = send_pending(url, as_of, work / "letters", smtp=settings, limit=n, actor="bench")
        seconds = time.perf_counter() - t0
        sizes = first.sizes()
    finally:
        first.stop()
    raws = [(first.out / f"{i}.eml").read_bytes() for i in range(1, len(sizes) + 1)]
    second = SmtpSink(work / "smtp-reference")
    try:
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", second.port, timeout=30) as smtp:
            for raw in raws:
                smtp.sendmail("relances@example.com", ["client@example.com"], raw)
        ref_seconds = time.perf_counter() - t0
        ref_count = len(second.sizes())
    finally:
        second.stop()
    sent = report.emails_sent
    rate = sent / seconds if seconds else 0.0
    ref_rate = ref_count / ref_seconds if ref_seconds else 0.0
    return {
        "requested": n, "emails_sent": sent, "failed": report.emails_failed,
        "retried_later": report.emails_retried_later, "seconds": round(seconds, 3),
        "messages_per_s": round(rate, 1),
        "ms_per_message": round(1000 * seconds / max(sent, 1), 2),
        "mean_message_kb": round(sum(sizes) / max(len(sizes), 1) / 1024, 1),
        "includes": "statement-of-account PDF per message (WeasyPrint), 3 transactions each",
        "reference_smtplib": {"messages": ref_count, "seconds": round(ref_seconds, 3),
                              "messages_per_s": round(ref_rate, 1)},
        "ratio_reference_rate_over_encours_rate": round(ref_rate / rate, 1) if rate else None,
    }  # fmt: skip


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="10,000 customers / 100,000 invoices, 100 emails")  # fmt: skip
    parser.add_argument("--customers", type=int, default=130_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=8)
    parser.add_argument("--lag-days", type=int, default=31)
    parser.add_argument("--send", type=int, default=200, help="emails to send (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each reference")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None, help="work dir (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.small:
        args.customers, args.invoices, args.send = 10_000, 100_000, min(args.send, 100)
    work = args.work or Path(tempfile.mkdtemp(prefix="encours-bench-dunning."))
    work.mkdir(parents=True, exist_ok=True)
    as_of = END + dt.timedelta(days=args.lag_days)
    import polars as pl

    from encours.collections.engine import run_dunning
    from encours.store import positions
    from encours.store.db import get_engine

    result: dict = {"benchmark": "dunning", "targets": TARGETS, "as_of": as_of.isoformat(),
                    "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()}  # fmt: skip
    try:
        log(f"portfolio: {args.customers} customers, {args.invoices} invoices")
        portfolio = build_portfolio(work, args.customers, args.invoices, args.months, args.seed)
        url = portfolio.pop("url")
        result["portfolio"] = {"customers": args.customers, "invoices": args.invoices,
                               "months": args.months, **portfolio}  # fmt: skip
        engine = get_engine(url)
        with engine.connect() as conn:
            open_inv = positions.open_invoices(conn, as_of)
        result["portfolio"]["customers_with_overdue_invoices"] = open_inv.filter(
            pl.col("days_overdue") > 0
        )["customer_id"].n_unique()
        del open_inv

        log("dunning run (dry_run=False, one transaction)")
        t0 = time.perf_counter()
        with engine.begin() as conn:
            run = run_dunning(conn, as_of, dry_run=False, actor="bench")
        total = time.perf_counter() - t0
        encours_levels = {r["customer_id"]: r["level_code"] for r in run.plan}
        summary = run.summary()
        result["dunning_run"] = {
            "seconds": round(total, 2),
            "plan_seconds": round(run.timings["plan"], 2),
            "render_seconds": round(run.timings["render"], 2),
            "write_seconds": round(run.timings["write"], 2),
            "commit_seconds": round(total - sum(run.timings.values()), 2),
            "messages": summary["messages"], "by_level": summary["by_level"],
            "drafts": summary["drafts"], "errors": summary["errors"],
            "tasks_created": summary["tasks_created"],
            "render_ms_per_message": round(1000 * run.timings["render"]
                                           / max(summary["messages"], 1), 3),
            "meets_target": total <= TARGETS["dunning_run_seconds_max"],
        }  # fmt: skip
        del run

        log("references: planning step (DuckDB SQL, pandas)")
        tables = read_tables(work / "encours.sqlite")
        d_times, d_plan = duckdb_plan(tables, as_of, args.repeat)
        p_times, p_plan = [], {}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            p_plan = pandas_plan(tables, as_of)
            p_times.append(time.perf_counter() - t0)
        plan_s = result["dunning_run"]["plan_seconds"]
        result["planning_references"] = {
            "duckdb_sql": {"seconds": round(min(d_times), 3),
                           "runs": [round(t, 3) for t in d_times],
                           "check": compare_plans(encours_levels, d_plan)},
            "pandas": {"seconds": round(min(p_times), 3),
                       "runs": [round(t, 3) for t in p_times],
                       "check": compare_plans(encours_levels, p_plan)},
            "ratio_encours_plan_over_duckdb": round(plan_s / min(d_times), 1),
            "ratio_encours_plan_over_pandas": round(plan_s / min(p_times), 1),
            "note": "encours' plan step also reads customers/contacts/policies, pauses, the "
                    "prior cycle and computes the penalties of the listed invoices",
        }  # fmt: skip
        del tables

        if args.send:
            log(f"send throughput: {args.send} emails to a loopback aiosmtpd")
            result["send"] = bench_send(url, as_of, args.send, work)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
