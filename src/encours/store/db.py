"""Engine, migrations and the unit of work.

The database URL comes from `--db URL`, else the `ENCOURS_DB` environment variable, else
`sqlite:///encours.db` in the working directory. Migrations are applied automatically on
first use and by `encours db upgrade`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, inspect, text

DEFAULT_URL = "sqlite:///encours.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_url(url: str | None = None) -> str:
    url = url or os.environ.get("ENCOURS_DB") or DEFAULT_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-200000")
    cur.close()


_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        connect_args = {}
        if url.startswith("postgresql"):
            # JIT compilation costs seconds on the portfolio queries and saves nothing here.
            connect_args = {"options": "-c jit=off"}
        engine = create_engine(url, connect_args=connect_args)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        _engines[url] = engine
    return engine


def alembic_config(url: str):  # noqa: ANN201
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    from alembic import command

    url = resolve_url(url)
    engine = _engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revisions(conn: Connection) -> set[str]:
    if not inspect(conn).has_table("alembic_version"):
        return set()
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def current_revision(conn: Connection) -> str | None:
    """The database's revision(s), comma-separated when branches are applied."""
    revisions = current_revisions(conn)
    return ",".join(sorted(revisions)) if revisions else None


def head_revisions() -> set[str]:
    """Every head of the migration tree (one per feature branch until they are merged)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(DEFAULT_URL)).get_heads())


_migrated: set[str] = set()


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The engine for `url`, with the schema brought to the latest migration."""
    url = resolve_url(url)
    engine = _engine(url)
    if migrate and url not in _migrated:
        with engine.connect() as conn:
            up_to_date = current_revisions(conn) == head_revisions()
        if not up_to_date:
            upgrade(url)
        _migrated.add(url)
    return engine


@contextmanager
def unit_of_work(url: str | None = None, *, enforce_foreign_keys: bool = True
                 ) -> Iterator[Connection]:  # fmt: skip
    """One transaction: everything inside is committed together or not at all.

    `enforce_foreign_keys=False` (bulk imports): on SQLite, the database does not check the
    references of this transaction (its per-row lookups are ~15 % of a large import); the
    caller checks every reference it writes against the ids it holds
    (store.bulk.check_references, which refuses an unchecked write in such a transaction).
    PostgreSQL always checks them."""
    engine = get_engine(url)
    if enforce_foreign_keys or engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    from encours.store.bulk import FOREIGN_KEYS_OFF

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None and not raw.in_transaction, "a fresh connection expected"
        raw.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before it
        conn.info[FOREIGN_KEYS_OFF] = True
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info.pop(FOREIGN_KEYS_OFF, None)
            raw.execute("PRAGMA foreign_keys=ON")


def dispose_all() -> None:
    """Close every pooled connection (tests, and before deleting a SQLite file)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _migrated.clear()


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT statement just created."""
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - only for statements that are not single inserts
        raise ValueError("the statement did not insert a row")
    return int(key[0])
