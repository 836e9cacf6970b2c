"""A throwaway PostgreSQL cluster for the benchmark.

The cluster runs as the `postgres` system user (PostgreSQL refuses to run as root) through
`runuser`, with its data directory under /tmp and a free TCP port on 127.0.0.1. It is tuned
for a benchmark, NOT for safety: fsync, synchronous_commit and full_page_writes are off (a
crash loses the data, which is thrown away anyway). Everything else is the PostgreSQL default
except a larger shared_buffers / work_mem, listed in `SETTINGS`, so that the figures are
those of a reasonably configured server on this machine.

    with throwaway_cluster() as admin_url:   # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "512MB",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
}


def pg_bin() -> Path:
    """The bin directory of the newest PostgreSQL installed (/usr/lib/postgresql/N/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not found:
        raise RuntimeError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres)")
    return found[-1].parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*args: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return list(args)


def server_version(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a fresh cluster, yield its admin URL, stop and delete it on exit."""
    binary = pg_bin()
    data = Path(tempfile.mkdtemp(prefix="encours-bench-pg."))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    options = " ".join(f"-c {k}={v}" for k, v in SETTINGS.items())
    try:
        subprocess.run(
            _as_postgres(str(binary / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            _as_postgres(
                str(binary / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(data / "server.log"),
                "-w",
                "-o",
                f"-p {port} -k {data} -c listen_addresses=127.0.0.1 {options}",
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres(str(binary / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    """Create database `name` (dropped first if it exists) and return its URL."""
    import psycopg

    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
