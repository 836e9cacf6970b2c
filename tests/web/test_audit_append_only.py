"""The audit log is append-only in the database itself (migration 0010): an UPDATE, a
DELETE (and on PostgreSQL a TRUNCATE) of audit_log fail; inserting still works."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from encours.store.db import get_engine, unit_of_work
from encours.store.schema import AuditEntry

AUDIT = AuditEntry.__table__


def _entry(db_url: str) -> int:
    with unit_of_work(db_url) as conn:
        values = {"at": dt.datetime(2025, 6, 30, 12), "actor": "test", "action": "update",
                  "entity": "customer", "entity_key": "C1", "before": {"credit_limit": "1"},
                  "after": {"credit_limit": "2"}}  # fmt: skip
        conn.execute(AUDIT.insert().values(**values))
        return conn.execute(select(func.max(AUDIT.c.id))).scalar_one()


def test_audit_entries_cannot_be_updated_or_deleted(db_url: str) -> None:
    get_engine(db_url)
    entry = _entry(db_url)
    statements = [
        update(AUDIT).where(AUDIT.c.id == entry).values(actor="someone else"),
        update(AUDIT).values(after=None),
        delete(AUDIT).where(AUDIT.c.id == entry),
        delete(AUDIT),
    ]
    if db_url.startswith("postgresql"):
        statements.append(text("TRUNCATE audit_log"))
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), unit_of_work(db_url) as conn:
            conn.execute(statement)
    with unit_of_work(db_url) as conn:
        row = conn.execute(select(AUDIT).where(AUDIT.c.id == entry)).mappings().one()
        assert row["actor"] == "test" and row["after"] == {"credit_limit": "2"}
    assert _entry(db_url) == entry + 1  # appending still works


def test_the_triggers_come_with_the_migration_head(db_url: str) -> None:
    from encours.store.db import current_revisions

    engine = get_engine(db_url)
    with engine.connect() as conn:
        assert "0010" in current_revisions(conn)
        if db_url.startswith("sqlite"):
            names = conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
            )).scalars().all()  # fmt: skip
        else:
            names = conn.execute(text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass "
                "AND NOT tgisinternal"
            )).scalars().all()  # fmt: skip
    assert {"audit_log_no_update", "audit_log_no_delete"} <= set(names)
