"""Web benchmark: server time of the portfolio page, customer pages and the order-check API
under a loopback load of a few concurrent clients, with a vendored static file's latency
measured in the same run as the reference.

    .venv/bin/python bench/bench_web.py [--invoices 200000] [--clients 4] [--requests 400]
        [--backend sqlite|postgresql] [--pg-url URL] [--work DIR] [--routes LIST]
        [--scenarios mixed,alone,split] [--workers N] [--nice N] [--out bench/results/web.json]

Generates a portfolio (customers = invoices / 20), imports it into a fresh database (SQLite
file, or a database of a throwaway PostgreSQL cluster, bench/_pg.py), takes the monthly
snapshots of the last 12 months, creates a user and an API token, starts uvicorn in a child
process on a free loopback port, logs in, warms up (the first portfolio request computes the
positions of the day: its time is reported as `portfolio_cold_ms`), then each client thread
requests in turn:

- `portfolio`: GET /portfolio?as_of=... (session cookie);
- `customer`: GET /customers/{code}?as_of=... (customers among the 50 largest exposures);
- `order_check`: POST /api/v1/order-check with `Authorization: Bearer <token>` (customers
  drawn among all customers, seeded);
- `static`: GET /static/htmx.min.js (vendored file: the server and loopback floor).

Three scenarios (`--scenarios`, default all): **mixed** (the routes in turn, one server: the
top-level figures, as in earlier versions), **alone** (each route by itself under the same
number of clients, as many requests of it as in the mix: key `alone`) and **split** (the
mix again, but the order checks go to a second server, `encours serve --api-only`, the
pages and the static file to the main one: key `split`, the recommended deployment).

Latencies are measured by the client (wall time of the request) and by the server
(Server-Timing header: time inside the application). Targets apply to the server time.
Prints one JSON document (progress on stderr). With `--work DIR` the generated files and
the SQLite database are kept there and reused by the next run with the same size.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _pg  # noqa: E402

ROUTES = ("portfolio", "customer", "order_check", "static")
SCENARIOS = ("mixed", "alone", "split")
STATIC = "/static/htmx.min.js"
# server time (Server-Timing), at 1M invoices
TARGETS = {"portfolio": ("p95", 300.0), "customer": ("p95", 150.0), "order_check": ("p99", 20.0)}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.50), "p95": pct(values, 0.95),
            "p99": pct(values, 0.99), "max": round(max(values), 2),
            "mean": round(statistics.fmean(values), 2)}  # fmt: skip


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def prepare(url: str, folder: Path, invoices: int, as_of: dt.date) -> dict:
    """Generate and import the portfolio, take the snapshots; seconds per phase."""
    from encours.analytics.snapshots import take_monthly_snapshots
    from encours.generate import generate_portfolio
    from encours.services.imports import import_file
    from encours.store.db import unit_of_work
    from encours.web.accounts import create_user

    phases = {}
    t = time.perf_counter()
    generate_portfolio(folder / "p", customers=max(1, invoices // 20), invoices=invoices,
                       seed=1, end=as_of)  # fmt: skip
    phases["generate_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    for kind in ("customers", "invoices", "payments"):
        import_file(folder / "p" / f"{kind}.csv", kind, db_url=url, actor="bench")
    phases["import_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    with unit_of_work(url) as conn:
        take_monthly_snapshots(conn, dt.date(2024, 7, 1), as_of)
        create_user(conn, "bench", "admin", "bench-password-1", actor="bench")
    phases["snapshots_s"] = round(time.perf_counter() - t, 1)
    return phases


def api_token_and_codes(url: str, n: int, seed: int) -> tuple[str, list[str]]:
    """A new API token (credit_manager) and `n` customer codes drawn among all customers."""
    from sqlalchemy import text

    from encours.store.db import unit_of_work
    from encours.web.accounts import create_token

    with unit_of_work(url) as conn:
        token = create_token(conn, f"bench-{time.time_ns()}", "credit_manager", actor="bench")
        codes = list(conn.execute(text("SELECT code FROM customers ORDER BY id")).scalars())
    return token, random.Random(seed).sample(codes, min(n, len(codes)))


def count_rows(url: str, table: str) -> int | None:
    from sqlalchemy import text

    from encours.store.db import unit_of_work

    try:
        with unit_of_work(url) as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    except Exception:  # noqa: BLE001 - table absent in this version
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(
    url: str,
    switch_interval: float | None = None,
    workers: int = 1,
    api_only: bool = False,
    nice: int = 0,
) -> Iterator[str]:
    """uvicorn in a child process; `workers` > 1: that many worker processes (an app and a
    cache each), the application built by the factory from ENCOURS_DB; `api_only`: the
    application of `encours serve --api-only` (/api/v1 only); `nice`: its niceness."""
    port = free_port()
    env = {**os.environ, "ENCOURS_SECRET_KEY": "bench", "ENCOURS_DB": url}
    switch = f"sys.setswitchinterval({switch_interval}); " if switch_interval else ""
    if workers > 1:
        factory = "create_api_app" if api_only else "create_app"
        code = (f"import sys, uvicorn; {switch}uvicorn.run('encours.web:{factory}', "
                f"factory=True, host='127.0.0.1', port={port}, workers={workers}, "
                "log_level='warning')")  # fmt: skip
    else:
        only = ", api_only=True" if api_only else ""  # (older versions: no such argument)
        code = (f"import sys, uvicorn; {switch}from encours.web.app import create_app; "
                f"uvicorn.run(create_app({url!r}{only}), host='127.0.0.1', "
                f"port={port}, log_level='warning')")  # fmt: skip
    command = [sys.executable, "-c", code]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    proc = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


class Session:
    """The logged-in client state shared by every load: cookies, token, codes, amounts."""

    def __init__(self, base: str, url: str, args: argparse.Namespace, as_of: dt.date) -> None:
        self.day = day = as_of.isoformat()
        token, self.check_codes = api_token_and_codes(url, 1000, args.seed)
        self.bearer = {"authorization": f"Bearer {token}"}
        login = httpx.Client(base_url=base, timeout=300)
        found = re.search(r'name="csrf_token" value="([^"]+)"', login.get("/login").text)
        assert found is not None
        r = login.post("/login", data={"username": "bench", "password": "bench-password-1",
                                       "csrf_token": found.group(1)})  # fmt: skip
        assert r.status_code in (200, 303), r.status_code
        self.cookies = dict(login.cookies)
        start = time.perf_counter()
        assert login.get(f"/portfolio?as_of={day}").status_code == 200
        self.cold_ms = (time.perf_counter() - start) * 1000
        log(f"portfolio cold: {self.cold_ms:.0f} ms")
        start = time.perf_counter()  # every open invoice of the day (customer pages slice it)
        r = login.get("/api/v1/invoices", params={"open_as_of": day, "per_page": 1})
        assert r.status_code == 200, r.text[:300]
        self.open_cold_ms = (time.perf_counter() - start) * 1000
        log(f"open invoices cold: {self.open_cold_ms:.0f} ms")
        if args.workers > 1:  # the other workers build their own cache: warm them all

            def warm() -> None:
                with httpx.Client(base_url=base, cookies=self.cookies, timeout=600) as c:
                    c.get(f"/portfolio?as_of={day}")
                    c.get("/api/v1/invoices", params={"open_as_of": day, "per_page": 1})

            for _ in range(3):
                pool = [threading.Thread(target=warm) for _ in range(args.workers * 3)]
                for t in pool:
                    t.start()
                for t in pool:
                    t.join()
        top = login.get("/api/v1/customers", params={"as_of": day, "per_page": 50}).json()
        self.codes = [c["code"] for c in top["items"]]
        rng = random.Random(args.seed)
        self.amounts = [f"{rng.randint(100, 50_000)}.{rng.randint(0, 99):02d}"
                        for _ in range(997)]  # fmt: skip

    def request(self, c: httpx.Client, name: str, i: int) -> httpx.Response:
        if name == "portfolio":
            return c.get(f"/portfolio?as_of={self.day}")
        if name == "customer":
            return c.get(f"/customers/{self.codes[i % len(self.codes)]}?as_of={self.day}")
        if name == "order_check":
            body = {"customer": self.check_codes[i % len(self.check_codes)],
                    "amount": self.amounts[i % len(self.amounts)], "as_of": self.day}  # fmt: skip
            return c.post("/api/v1/order-check", json=body, headers=self.bearer)
        return c.get(STATIC)

    def warm(self, bases: dict[str, str], routes: tuple[str, ...]) -> None:
        for i, name in enumerate(routes * 3):
            with httpx.Client(base_url=bases[name], cookies=self.cookies, timeout=300) as c:
                r = self.request(c, name, i)
                assert r.status_code == 200, (name, r.status_code, r.text[:300])


def load(
    session: Session, bases: dict[str, str], url: str, mix: tuple[str, ...], clients: int,
    requests: int,
) -> dict:  # fmt: skip
    """`clients` threads, each sending `requests` requests back to back, the routes of
    `mix` in turn, each route to its server (`bases`); latencies per route."""
    checks_before = count_rows(url, "order_checks")
    audit_before = count_rows(url, "audit_log")
    client_ms: dict[str, list[float]] = {k: [] for k in mix}
    server_ms: dict[str, list[float]] = {k: [] for k in mix}
    decisions: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def worker(offset: int) -> None:
        try:
            with contextlib.ExitStack() as stack:
                conns = {b: stack.enter_context(httpx.Client(
                    base_url=b, cookies=session.cookies, timeout=300))
                    for b in set(bases.values())}  # fmt: skip
                for i in range(requests):
                    name = mix[(i + offset) % len(mix)]
                    c = conns[bases[name]]
                    t = time.perf_counter()
                    r = session.request(c, name, i * clients + offset)
                    elapsed = (time.perf_counter() - t) * 1000
                    if r.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:300]}")
                    timing = re.search(r"dur=([0-9.]+)", r.headers.get("server-timing", ""))
                    with lock:
                        client_ms[name].append(elapsed)
                        if timing:
                            server_ms[name].append(float(timing.group(1)))
                        if name == "order_check":
                            decision = r.json()["decision"]
                            decisions[decision] = decisions.get(decision, 0) + 1
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    load_before = loadavg()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t_load = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_load
    if errors:
        raise RuntimeError(errors[0])
    checks_after = count_rows(url, "order_checks")
    audit_after = count_rows(url, "audit_log")
    total = sum(len(v) for v in client_ms.values())
    server_summary = {k: summary(v) for k, v in server_ms.items() if v}
    return {
        "clients": clients,
        "mix": list(mix),
        "load_seconds": round(wall, 1),
        "requests": total,
        "throughput_rps": round(total / wall, 1),
        "server_ms": server_summary,
        "client_ms": {k: summary(v) for k, v in client_ms.items()},
        "order_check_decisions": decisions,
        "order_checks_recorded": None if checks_before is None
        else checks_after - checks_before,
        # audit rows written during the load (each changes the ledger version: new build)
        "audit_rows_added": audit_after - audit_before,
        "targets": {
            name: {"stat": stat, "max_ms": limit, "server_ms": server_summary[name][stat],
                   "pass": server_summary[name][stat] < limit}
            for name, (stat, limit) in TARGETS.items() if name in server_summary
        },
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }  # fmt: skip


def run_scenarios(
    url: str, args: argparse.Namespace, as_of: dt.date, stack: contextlib.ExitStack
) -> dict:
    """mixed (the routes of --routes interleaved, one server: the top-level figures, as
    before), alone (each route by itself, the same clients, as many requests of that route
    as in the mix) and split (the mix again, the order checks sent to an `--api-only`
    server of their own, the other routes to the main one)."""
    scenarios = args.scenarios.split(",")
    mix = tuple(args.routes.split(","))
    base = stack.enter_context(server(url, args.switch_interval, args.workers, nice=args.nice))
    session = Session(base, url, args, as_of)
    bases = dict.fromkeys(ROUTES, base)
    session.warm(bases, ROUTES)
    out: dict = {"portfolio_cold_ms": round(session.cold_ms, 1),
                 "open_invoices_cold_ms": round(session.open_cold_ms, 1)}  # fmt: skip
    if "mixed" in scenarios:
        log(f"mixed: {','.join(mix)}, {args.clients} clients")
        out.update(load(session, bases, url, mix, args.clients, args.requests))
    if "alone" in scenarios:
        per_route = max(1, args.requests // len(mix))
        out["alone"] = {}
        for name in mix:
            log(f"alone: {name}, {args.clients} clients")
            out["alone"][name] = load(session, bases, url, (name,), args.clients, per_route)
    if "split" in scenarios and "order_check" in mix:
        api = stack.enter_context(server(url, args.switch_interval, 1, api_only=True))
        split = {**bases, "order_check": api}
        session.warm(split, ("order_check",))
        log(f"split: {','.join(mix)}, {args.clients} clients, order checks -> --api-only")
        out["split"] = load(session, split, url, mix, args.clients, args.requests)
        out["split"]["servers"] = {name: "api-only" if split[name] == api else "main"
                                   for name in mix}  # fmt: skip
    return out


def machine() -> dict:
    import sqlite3

    import polars
    import sqlalchemy

    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version, "polars": polars.__version__,
            "sqlalchemy": sqlalchemy.__version__, "platform": platform.platform()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400, help="per client, all routes")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=None, help="existing PostgreSQL server (admin URL)")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep files and the SQLite database here (reused when present)",
    )
    parser.add_argument(
        "--routes",
        default=",".join(ROUTES),
        help="the mix each client requests in turn (default: all four)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (default 1, as `encours serve`)",
    )
    parser.add_argument(
        "--scenarios",
        default="mixed,alone,split",
        help="mixed (the routes interleaved, one server), alone (each route by itself), "
        "split (the mix, order checks to an --api-only server); default: all three",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the main server (pages), e.g. 10: the --api-only server of the "
        "split scenario keeps 0",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() of the server (default: Python's 0.005)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not args.routes or set(args.routes.split(",")) - set(ROUTES):
        parser.error(f"--routes: a comma-separated list of {', '.join(ROUTES)}")
    if not args.scenarios or set(args.scenarios.split(",")) - set(SCENARIOS):
        parser.error(f"--scenarios: a comma-separated list of {', '.join(SCENARIOS)}")

    as_of = dt.date(2025, 6, 30)
    folder = args.work or Path(tempfile.mkdtemp(prefix="bench-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "web", "invoices": args.invoices,
              "customers": max(1, args.invoices // 20), "backend": args.backend,
              "clients": args.clients, "workers": args.workers, "mix": args.routes.split(","),
              "main_server_nice": args.nice,
              "as_of": as_of.isoformat(),
              "server_switch_interval": args.switch_interval or sys.getswitchinterval(),
              "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "routes": {"portfolio": "GET /portfolio", "customer": "GET /customers/{code}",
                         "order_check": "POST /api/v1/order-check (Bearer token)",
                         "static": f"GET {STATIC} (reference: vendored static file)"},
              "machine": machine(), "loadavg_start": loadavg()}  # fmt: skip
    with contextlib.ExitStack() as stack:
        if args.backend == "sqlite":
            db = folder / f"encours-{args.invoices}.db"
            url = f"sqlite:///{db}"
            marker = folder / f"ready-{args.invoices}.json"
            if marker.exists() and db.exists():
                log(f"reusing {db}")
                result["setup"] = {"reused": True, **json.loads(marker.read_text())}
            else:
                for stale in folder.glob(f"encours-{args.invoices}.db*"):
                    stale.unlink()
                log(f"preparing {args.invoices} invoices in {db}")
                result["setup"] = prepare(url, folder, args.invoices, as_of)
                marker.write_text(json.dumps(result["setup"]))
        else:
            admin = args.pg_url or stack.enter_context(_pg.throwaway_cluster())
            result["postgresql"] = _pg.server_version(admin)
            name = f"bench_web_{args.invoices}"
            url = _pg.create_database(admin, name)
            log(f"preparing {args.invoices} invoices in PostgreSQL {name}")
            result["setup"] = prepare(url, folder, args.invoices, as_of)
        log(f"setup: {result['setup']}")
        with contextlib.ExitStack() as servers:  # stopped before the database is dropped
            result.update(run_scenarios(url, args, as_of, servers))
        if args.backend == "postgresql" and args.pg_url:
            _pg.drop_database(admin, name)
    result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
