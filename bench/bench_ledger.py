"""Ledger benchmark: import throughput, full aging report, peak memory, against references.

    .venv/bin/python bench/bench_ledger.py --sizes 100000,1000000 \
        [--backends sqlite,postgresql] [--out bench/results/ledger.json]

For each size (number of invoices; customers = invoices / 20 unless --customers is given):

1. generate customers.csv / invoices.csv / payments.csv with `encours.generate`;
2. references over the same files and the same as-of date (the generator's end date): one
   DuckDB SQL query reading the CSVs (parsing included), the same query on tables loaded
   beforehand, and a straightforward pandas version (bench/_references.py);
3. for each backend: a fresh database, `import_file` of customers, invoices then payments,
   and `customer_positions` (the aging report of all customers) as of the same date;
4. the encours positions are compared with both references, customer by customer.

Every measured step runs in its own child process (bench/_steps.py), which reports its own
seconds and peak RSS (VmHWM, the high-water mark of the child's own address space): the
memory figures are those of encours (or of the reference), not of this harness. (Not
`ru_maxrss`: on Linux a child's ru_maxrss includes the RSS its parent had when it forked.)
For PostgreSQL the server's own memory is not included.

Prints one JSON document on stdout (and writes it to --out). Not a timed test: run it by
hand, on a quiet machine (the load average is recorded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _pg  # noqa: E402
import _references as refs  # noqa: E402

DEFAULT_END = "2025-06-30"
TARGET_SIZE = 1_000_000
TARGETS = {
    "import_rows_per_s_sqlite_min": 100_000,
    "aging_vs_duckdb_csv_max_ratio": 2.0,
    "peak_rss_mb_max": 1536,
    "applies_at_invoices": TARGET_SIZE,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_step(params: dict, timeout: float = 3600) -> dict:
    """Run one step in a child process and return what it reported."""
    cmd = [sys.executable, str(HERE / "_steps.py"), json.dumps(params)]
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise RuntimeError(f"step {params['step']} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["loadavg_1min_before"] = load
    return result


def machine_info() -> dict:
    import duckdb
    import pandas
    import polars
    import sqlalchemy

    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu_model = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(mem_kb / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "polars": polars.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "loadavg_start": os.getloadavg(),
    }


# -- comparison ------------------------------------------------------------------------------


def compare(encours_path: Path, ref_path: Path) -> dict:
    """Customer by customer, every figure of refs.COMPARED; nulls (absent rows) count as 0."""
    import polars as pl

    keys = ["customer_code", "currency"]
    a = pl.read_parquet(encours_path)
    b = pl.read_parquet(ref_path)
    joined = a.join(b, on=keys, how="full", coalesce=True, suffix="_ref").with_columns(
        [pl.col(c).fill_null(0) for c in refs.COMPARED]
        + [pl.col(f"{c}_ref").fill_null(0) for c in refs.COMPARED]
    )
    diff = pl.any_horizontal([pl.col(c) != pl.col(f"{c}_ref") for c in refs.COMPARED])
    bad = joined.filter(diff)
    totals_a = {c: int(a[c].sum()) for c in refs.COMPARED}
    totals_b = {c: int(b[c].sum()) for c in refs.COMPARED}
    return {
        "ok": bad.height == 0 and totals_a == totals_b,
        "rows_encours": a.height,
        "rows_reference": b.height,
        "customers_compared": joined.height,
        "mismatched_customers": bad.height,
        "totals_equal": totals_a == totals_b,
        "first_mismatches": bad.head(5).to_dicts(),
    }


def totals(path: Path) -> dict:
    import polars as pl

    frame = pl.read_parquet(path)
    return {c: int(frame[c].sum()) for c in refs.COMPARED}


# -- one size --------------------------------------------------------------------------------


def best(times: list[float]) -> float:
    return min(times)


def bench_size(args: argparse.Namespace, size: int, pg_admin: str | None, work: Path) -> dict:
    customers = args.customers or max(1, size // 20)
    data = work / f"data-{size}"
    if data.exists():
        shutil.rmtree(data)
    log(f"size {size}: generating {size} invoices for {customers} customers")
    gen = run_step({"step": "generate", "data": str(data), "customers": customers,
                    "invoices": size, "seed": args.seed, "end": args.end})  # fmt: skip
    summary = gen["summary"]
    as_of = summary["end"]
    files = {k: {"mb": round((data / f"{k}.csv").stat().st_size / 2**20, 1)}
             for k in ("customers", "invoices", "payments")}  # fmt: skip
    result: dict = {
        "invoices": size,
        "customers": customers,
        "as_of": as_of,
        "generated": {
            "seconds": round(gen["seconds"], 2),
            "customers": summary["customers"],
            "invoices": summary["invoices"],
            "credit_notes": summary["credit_notes"],
            "payments": summary["payments"],
            "unreferenced_payments": summary["unreferenced_payments"],
            "disputed_invoices": summary["disputed_invoices"],
            "outstanding": summary["outstanding"],
            "files": files,
        },
    }
    log(f"size {size}: checking the references' preconditions")
    pre = refs.preconditions(data, dt.date.fromisoformat(as_of))
    result["reference_preconditions"] = {
        **pre,
        "ok": all(v == 0 for k, v in pre.items() if k != "settled_in_file"),
    }

    # -- references ----------------------------------------------------------------------
    references: dict = {}
    ref_out: dict[str, Path] = {}
    for name in ("duckdb_csv", "duckdb_tables", "pandas"):
        log(f"size {size}: reference {name}")
        ref_out[name] = work / f"{name}-{size}.parquet"
        r = run_step({"step": name, "data": str(data), "as_of": as_of,
                      "repeat": args.repeat, "out": str(ref_out[name])})  # fmt: skip
        references[name] = {
            "seconds": round(best(r["seconds"]), 3),
            "runs": [round(t, 3) for t in r["seconds"]],
            "rows": r["rows"],
            "peak_rss_mb": round(r["peak_rss_mb"], 1),
            "loadavg_1min_before": r["loadavg_1min_before"],
        }
        if name == "duckdb_tables":
            references[name]["load_tables_seconds"] = round(r["load_tables_seconds"], 3)
        if name.startswith("duckdb"):
            references[name]["threads"] = r["threads"]
    references["duckdb_csv"]["includes_csv_parsing"] = True
    references["duckdb_tables"]["includes_csv_parsing"] = False
    references["pandas"]["includes_csv_parsing"] = True
    references["duckdb_vs_pandas"] = compare(ref_out["duckdb_csv"], ref_out["pandas"])
    result["references"] = references

    # -- encours -------------------------------------------------------------------------
    backends: dict = {}
    for backend in args.backends:
        if backend == "sqlite":
            db_file = work / f"encours-{size}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db_file}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{db_file}"
        else:
            assert pg_admin is not None
            url = _pg.create_database(pg_admin, f"bench_{size}")
        log(f"size {size}: {backend}: migrate")
        mig = run_step({"step": "migrate", "url": url})
        out: dict = {"server_version": mig["server_version"], "import": {}}
        total_rows, total_seconds, peak = 0, 0.0, 0.0
        for kind in ("customers", "invoices", "payments"):
            log(f"size {size}: {backend}: import {kind}")
            r = run_step({"step": "import", "kind": kind, "url": url, "data": str(data)})
            if r["rejected"]:
                raise RuntimeError(f"{kind}: {r['rejected']} rows rejected")
            out["import"][kind] = {
                "rows": r["rows"],
                "seconds": round(r["seconds"], 3),
                "rows_per_s": round(r["rows"] / r["seconds"]),
                "peak_rss_mb": round(r["peak_rss_mb"], 1),
                "loadavg_1min_before": r["loadavg_1min_before"],
                "details": r["details"],
            }
            total_rows += r["rows"]
            total_seconds += r["seconds"]
            peak = max(peak, r["peak_rss_mb"])
        out["import"]["total"] = {
            "rows": total_rows,
            "seconds": round(total_seconds, 3),
            "rows_per_s": round(total_rows / total_seconds),
            "peak_rss_mb": round(peak, 1),
        }
        log(f"size {size}: {backend}: aging report")
        aging_out = work / f"encours-{backend}-{size}.parquet"
        r = run_step({"step": "aging", "url": url, "as_of": as_of, "repeat": args.repeat,
                      "out": str(aging_out)})  # fmt: skip
        aging_s = best(r["seconds"])
        out["aging"] = {
            "seconds": round(aging_s, 3),
            "runs": [round(t, 3) for t in r["seconds"]],
            "rows": r["rows"],
            "peak_rss_mb": round(r["peak_rss_mb"], 1),
            "loadavg_1min_before": r["loadavg_1min_before"],
        }
        peak = max(peak, r["peak_rss_mb"])
        out["peak_rss_mb"] = round(peak, 1)
        out["ratios"] = {
            "aging_vs_duckdb_csv": round(aging_s / references["duckdb_csv"]["seconds"], 2),
            "aging_vs_duckdb_tables": round(aging_s / references["duckdb_tables"]["seconds"], 2),
            "aging_vs_pandas": round(aging_s / references["pandas"]["seconds"], 2),
        }
        check_duck = compare(aging_out, ref_out["duckdb_csv"])
        check_pandas = compare(aging_out, ref_out["pandas"])
        out["totals_check"] = {
            "ok": check_duck["ok"] and check_pandas["ok"],
            "compared": "every customer and currency, exactly (integer minor units), and the "
            "column totals: " + ", ".join(refs.COMPARED),
            "fifo_reproduced": True,
            "vs_duckdb": check_duck,
            "vs_pandas": check_pandas,
            "totals": {
                "encours": totals(aging_out),
                "duckdb": totals(ref_out["duckdb_csv"]),
                "pandas": totals(ref_out["pandas"]),
            },
        }
        # and the generator's own figure: invoiced - credited - paid
        outstanding = round(Decimal(summary["outstanding"]) * 100)
        out["totals_check"]["generator_outstanding_minor"] = outstanding
        out["totals_check"]["balance_matches_generator"] = (
            out["totals_check"]["totals"]["encours"]["balance_minor"] == outstanding
        )
        out["targets"] = {
            "applies": size >= TARGET_SIZE,
            "import_rows_per_s": (
                None
                if backend != "sqlite"
                else {
                    "value": out["import"]["total"]["rows_per_s"],
                    "min": TARGETS["import_rows_per_s_sqlite_min"],
                    "pass": out["import"]["total"]["rows_per_s"]
                    >= TARGETS["import_rows_per_s_sqlite_min"],
                }
            ),
            "aging_vs_duckdb_csv": {
                "value": out["ratios"]["aging_vs_duckdb_csv"],
                "max": TARGETS["aging_vs_duckdb_csv_max_ratio"],
                "pass": out["ratios"]["aging_vs_duckdb_csv"]
                <= TARGETS["aging_vs_duckdb_csv_max_ratio"],
            },
            "peak_rss_mb": {
                "value": out["peak_rss_mb"],
                "max": TARGETS["peak_rss_mb_max"],
                "pass": out["peak_rss_mb"] <= TARGETS["peak_rss_mb_max"],
            },
        }
        backends[backend] = out
        if backend == "postgresql" and not args.keep:
            _pg.drop_database(pg_admin, f"bench_{size}")
        elif backend == "sqlite" and not args.keep:
            out["db_file_mb"] = round(db_file.stat().st_size / 2**20, 1)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        totals_ok = "ok" if out["totals_check"]["ok"] else "DIFFER"
        log(
            f"size {size}: {backend}: import {out['import']['total']['rows_per_s']} rows/s, "
            f"aging {aging_s:.2f}s, ratio vs duckdb {out['ratios']['aging_vs_duckdb_csv']}, "
            f"peak {peak:.0f} MB, totals {totals_ok}"
        )
    result["backends"] = backends
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="invoice counts, comma separated")
    ap.add_argument("--backends", default="sqlite,postgresql", help="sqlite,postgresql")
    ap.add_argument("--customers", type=int, default=0, help="default: invoices / 20")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end", default=DEFAULT_END, help="generator end date = as-of date")
    ap.add_argument("--repeat", type=int, default=3, help="aging / reference runs (best kept)")
    ap.add_argument("--pg-url", default="", help="admin URL of an existing PostgreSQL server "
                    "(default: start a throwaway cluster)")  # fmt: skip
    ap.add_argument("--work", default="", help="scratch directory (default: a new one in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the data and databases")
    ap.add_argument("--out", default="", help="also write the JSON document here")
    args = ap.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        ap.error(f"unknown backends {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    doc: dict = {
        "benchmark": "encours ledger: import, aging report, peak memory vs DuckDB and pandas",
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "method": {
            "import": "encours.services.imports.import_file of customers.csv, invoices.csv "
            "then payments.csv into a fresh database, each in its own process; seconds of "
            "the import_file call (hash + parse + validation + write + commit); rows = rows "
            "of the file (invoices.csv includes the credit notes)",
            "aging": "encours.analytics.portfolio.customer_positions(conn, as_of) for all "
            "customers, default buckets, in its own process; best of --repeat runs",
            "references": "bench/_references.py over the same CSV files and as-of date: one "
            "DuckDB SQL query (from the CSV files: parsing included; and on tables loaded "
            "beforehand), and pandas (read_csv included); best of --repeat runs in one "
            "process; FIFO of unreferenced payments reproduced with window functions",
            "peak_rss": "peak resident set of the child process running the step: VmHWM of "
            "/proc/self/status, MB (ru_maxrss is not used: on Linux it includes the RSS of "
            "the parent at fork time); for PostgreSQL the server processes are not included",
            "postgresql": "throwaway cluster (bench/_pg.py) with fsync, synchronous_commit "
            "and full_page_writes OFF (benchmark only, not a safe configuration)",
        },
        "targets": TARGETS,
        "sizes": [],
    }
    with ExitStack() as stack:
        work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="encours-bench."))
        work.mkdir(parents=True, exist_ok=True)
        if not args.keep and not args.work:
            stack.callback(shutil.rmtree, work, True)
        pg_admin = None
        if "postgresql" in args.backends:
            if args.pg_url:
                pg_admin = args.pg_url
                doc["machine"]["postgresql_cluster"] = "existing server (--pg-url)"
            else:
                log("starting a throwaway PostgreSQL cluster")
                pg_admin = stack.enter_context(_pg.throwaway_cluster())
                doc["machine"]["postgresql_cluster"] = {
                    "bin": str(_pg.pg_bin()),
                    "settings": _pg.SETTINGS,
                }
            doc["machine"]["postgresql"] = _pg.server_version(pg_admin)
        for size in args.sizes:
            doc["sizes"].append(bench_size(args, size, pg_admin, work))
    doc["machine"]["loadavg_end"] = os.getloadavg()
    doc["total_seconds"] = round(time.perf_counter() - started, 1)
    summary = []
    for s in doc["sizes"]:
        for backend, b in s["backends"].items():
            t = b["targets"]
            summary.append({
                "invoices": s["invoices"], "backend": backend, "applies": t["applies"],
                "import_rows_per_s": b["import"]["total"]["rows_per_s"],
                "aging_seconds": b["aging"]["seconds"],
                "duckdb_csv_seconds": s["references"]["duckdb_csv"]["seconds"],
                "aging_vs_duckdb_csv": b["ratios"]["aging_vs_duckdb_csv"],
                "peak_rss_mb": b["peak_rss_mb"],
                "totals_ok": b["totals_check"]["ok"],
                "pass": {k: (v["pass"] if v else None) for k, v in t.items() if k != "applies"},
            })  # fmt: skip
    doc["summary"] = summary
    text = json.dumps(doc, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
