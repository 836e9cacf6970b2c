"""The migrations build exactly the tables the models describe (columns, types, indexes),
on SQLite and on PostgreSQL: a model change without its migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import encours.store.models  # noqa: F401  (registers every *_schema module)
from encours.store.db import upgrade
from encours.store.schema import Base


def test_upgraded_database_matches_the_models(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
