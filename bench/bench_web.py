"""Web benchmark: server time of the portfolio page and of customer pages under a loopback
load of a few concurrent clients, with a static file's latency measured in the same run.

    .venv/bin/python bench/bench_web.py [--invoices 100000] [--clients 4] [--requests 200]
        [--db URL] [--out bench/results/web.json]

Generates a portfolio (customers = invoices / 20), imports it into a fresh SQLite database
(or --db), creates a user, starts uvicorn in a child process on a free loopback port, logs
in, warms the cache (the first portfolio request computes the positions; its time is
reported as `cold_ms`), then each client thread requests in turn the portfolio page, a
customer page (customers taken among the largest exposures) and /static/style.css.
Latencies are measured by the client (wall time of the request) and by the server
(Server-Timing header: time inside the application). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.50), "p95": pct(values, 0.95),
            "p99": pct(values, 0.99), "mean": round(statistics.fmean(values), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="per client, all routes")
    parser.add_argument("--db", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from encours.analytics.snapshots import take_monthly_snapshots
    from encours.generate import generate_portfolio
    from encours.services.imports import import_file
    from encours.store.db import unit_of_work
    from encours.web.accounts import create_user

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    url = args.db or f"sqlite:///{tmp / 'encours.db'}"
    as_of = dt.date(2025, 6, 30)
    t0 = time.perf_counter()
    generate_portfolio(tmp / "p", customers=max(1, args.invoices // 20), invoices=args.invoices,
                       seed=1, end=as_of)  # fmt: skip
    for kind in ("customers", "invoices", "payments"):
        import_file(tmp / "p" / f"{kind}.csv", kind, db_url=url, actor="bench")
    with unit_of_work(url) as conn:
        take_monthly_snapshots(conn, dt.date(2024, 7, 1), as_of)
        create_user(conn, "bench", "admin", "bench-password-1", actor="bench")
    setup_s = time.perf_counter() - t0
    print(f"[bench] data ready in {setup_s:.1f}s", file=sys.stderr)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ENCOURS_SECRET_KEY": "bench"}
    code = ("import sys, uvicorn; from encours.web.app import create_app; "
            f"uvicorn.run(create_app({url!r}), host='127.0.0.1', port={port}, "
            "log_level='warning')")  # fmt: skip
    server = subprocess.Popen([sys.executable, "-c", code], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        login = httpx.Client(base_url=base, timeout=120)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.get("/login").text).group(1)
        login.post("/login", data={"username": "bench", "password": "bench-password-1",
                                   "csrf_token": token})  # fmt: skip
        cookies = dict(login.cookies)
        day = as_of.isoformat()
        start = time.perf_counter()
        login.get(f"/portfolio?as_of={day}")
        cold_ms = (time.perf_counter() - start) * 1000
        top = login.get("/api/v1/customers", params={"as_of": day, "per_page": 50}).json()
        codes = [c["code"] for c in top["items"]]
        routes = {"portfolio": lambda i: f"/portfolio?as_of={day}",
                  "customer": lambda i: f"/customers/{codes[i % len(codes)]}?as_of={day}",
                  "static": lambda i: "/static/style.css"}  # fmt: skip
        client_ms: dict[str, list[float]] = {k: [] for k in routes}
        server_ms: dict[str, list[float]] = {k: [] for k in routes}
        lock = threading.Lock()

        def worker(offset: int) -> None:
            with httpx.Client(base_url=base, cookies=cookies, timeout=120) as c:
                for i in range(args.requests):
                    name = list(routes)[i % len(routes)]
                    t = time.perf_counter()
                    r = c.get(routes[name](i + offset))
                    elapsed = (time.perf_counter() - t) * 1000
                    assert r.status_code == 200, (name, r.status_code)
                    timing = re.search(r"dur=([0-9.]+)", r.headers.get("server-timing", ""))
                    with lock:
                        client_ms[name].append(elapsed)
                        if timing:
                            server_ms[name].append(float(timing.group(1)))

        threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(args.clients)]
        t_load = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_load
    finally:
        server.terminate()
        server.wait(10)
    total = sum(len(v) for v in client_ms.values())
    result = {
        "benchmark": "web", "invoices": args.invoices, "customers": max(1, args.invoices // 20),
        "clients": args.clients, "requests": total, "database": url.split(":")[0],
        "setup_s": round(setup_s, 1), "portfolio_cold_ms": round(cold_ms, 1),
        "throughput_rps": round(total / wall, 1),
        "client_ms": {k: summary(v) for k, v in client_ms.items()},
        "server_ms": {k: summary(v) for k, v in server_ms.items() if v},
        "reference": "static = /static/style.css in the same run (server and loopback floor)",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load": os.getloadavg()},
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
