"""One measured step of the ledger benchmark, run in its own process.

    python bench/_steps.py '{"step": "import", "kind": "invoices", "url": ..., "data": ...}'

Prints one JSON line on stdout: the step's seconds and the peak RSS of this process, so
that the memory figure is that of the step alone (encours, or a reference) and not that of
the harness. The peak is VmHWM of /proc/self/status (the high-water mark of this process's
own address space), not `ru_maxrss`: on Linux a child's ru_maxrss starts from the RSS its
parent had when it forked (the pre-exec image counts), so a large harness would inflate it;
ru_maxrss is reported too, for reference. Steps:

- generate: write customers/invoices/payments.csv with `encours.generate.generate_portfolio`
- migrate: create the schema of a fresh database (not timed as part of the import)
- import: `encours.services.imports.import_file` of one file into the database
- aging: `encours.analytics.portfolio.customer_positions` for all customers, `repeat` times in
  this process; the frame of the last run is written to `out` (parquet) for the totals check
- duckdb_csv / duckdb_tables / pandas: the references (bench/_references.py), `repeat` times
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _references as refs  # noqa: E402


def _status_mb(field: str) -> float:
    """A memory figure of /proc/self/status (VmRSS, VmHWM...), MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    """Current resident set size of this process, MB."""
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    """Peak resident set size of this process since it started (exec), MB."""
    return _status_mb("VmHWM")


def _timed(fn, repeat: int) -> tuple[list[float], object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def step_generate(p: dict) -> dict:
    from encours.generate import generate_portfolio

    t0 = time.perf_counter()
    summary = generate_portfolio(
        Path(p["data"]), p["customers"], p["invoices"], p["seed"],
        dt.date.fromisoformat(p["end"]), months=p.get("months", 24),
    )  # fmt: skip
    return {"seconds": time.perf_counter() - t0, "summary": summary.to_dict()}


def step_migrate(p: dict) -> dict:
    from encours.store.db import get_engine

    t0 = time.perf_counter()
    engine = get_engine(p["url"])
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
        else:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
    return {"seconds": time.perf_counter() - t0, "server_version": version}


def step_import(p: dict) -> dict:
    from encours.services.imports import import_file
    from encours.store.db import get_engine

    get_engine(p["url"])  # engine and schema check outside the measure
    path = Path(p["data"]) / f"{p['kind']}.csv"
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    report = import_file(path, p["kind"], db_url=p["url"], actor="bench")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "rows": report.rows,
        "inserted": report.inserted,
        "rejected": report.rejected,
        "details": report.details,
        "rss_before_mb": rss0,
        "file_mb": path.stat().st_size / 2**20,
    }


def step_aging(p: dict) -> dict:
    import polars as pl

    from encours.analytics.portfolio import customer_positions
    from encours.store.db import get_engine, unit_of_work

    get_engine(p["url"])
    as_of = dt.date.fromisoformat(p["as_of"])
    rss0 = _rss_mb()

    def run() -> pl.DataFrame:
        with unit_of_work(p["url"]) as conn:
            return customer_positions(conn, as_of)

    times, frame = _timed(run, p.get("repeat", 3))
    frame = frame.rename({"code": "customer_code"})
    frame.select(["customer_code", "currency", *refs.COMPARED]).write_parquet(p["out"])
    return {"seconds": times, "rows": frame.height, "rss_before_mb": rss0}


def step_duckdb(p: dict, preloaded: bool) -> dict:
    import duckdb

    data, as_of = Path(p["data"]), dt.date.fromisoformat(p["as_of"])
    con = duckdb.connect()
    threads = con.sql("SELECT current_setting('threads')").fetchone()[0]
    load_seconds = None
    if preloaded:
        t0 = time.perf_counter()
        refs.load_duckdb_tables(con, data)
        load_seconds = time.perf_counter() - t0
    rss0 = _rss_mb()
    times, frame = _timed(
        lambda: refs.duckdb_aging(con, data, as_of, preloaded), p.get("repeat", 3)
    )
    frame.select(["customer_code", "currency", *refs.COMPARED]).write_parquet(p["out"])
    return {
        "seconds": times, "rows": frame.height, "threads": threads, "rss_before_mb": rss0,
        "load_tables_seconds": load_seconds, "duckdb_version": duckdb.__version__,
    }  # fmt: skip


def step_pandas(p: dict) -> dict:
    import pandas as pd
    import polars as pl

    data, as_of = Path(p["data"]), dt.date.fromisoformat(p["as_of"])
    rss0 = _rss_mb()
    times, frame = _timed(lambda: refs.pandas_aging(data, as_of), p.get("repeat", 3))
    out = pl.from_pandas(frame[["customer_code", "currency", *refs.COMPARED]])
    out.write_parquet(p["out"])
    return {"seconds": times, "rows": out.height, "rss_before_mb": rss0,
            "pandas_version": pd.__version__}  # fmt: skip


def main() -> None:
    p = json.loads(sys.argv[1])
    step = p["step"]
    if step == "generate":
        out = step_generate(p)
    elif step == "migrate":
        out = step_migrate(p)
    elif step == "import":
        out = step_import(p)
    elif step == "aging":
        out = step_aging(p)
    elif step in ("duckdb_csv", "duckdb_tables"):
        out = step_duckdb(p, preloaded=step == "duckdb_tables")
    elif step == "pandas":
        out = step_pandas(p)
    else:
        raise SystemExit(f"unknown step {step!r}")
    out["peak_rss_mb"] = _peak_mb()
    out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["pid"] = os.getpid()
    sys.stdout.write("\n" + json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main()
