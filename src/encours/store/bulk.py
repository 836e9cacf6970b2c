"""Bulk writes of whole frames: COPY on PostgreSQL, executemany on SQLite.

Rows move as columns (polars), never one Python object per row through the ORM. Ids are
assigned by the caller (`reserve_ids`) so that related rows (documents, payments,
allocations) can reference each other inside the same transaction.
"""

from __future__ import annotations

import io

import polars as pl
from sqlalchemy import Connection, Table, func, select, text


def reserve_ids(conn: Connection, table: Table, count: int) -> int:
    """First id of a block of `count` new ids for `table` (ids are max(id) + 1 ...)."""
    current = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return int(current) + 1


def _prepared(frame: pl.DataFrame, table: Table, for_sqlite: bool) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        elif dtype == pl.Datetime:
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        elif dtype == pl.Boolean and for_sqlite:
            col = col.cast(pl.Int8)
        exprs.append(col.alias(name))
    return frame.select(exprs)


def with_defaults(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Add the columns the frame lacks that have a Python-side default in the model."""
    extra = []
    for column in table.c:
        if column.name in frame.columns or column.default is None:
            continue
        default = column.default
        value = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined]
        extra.append(pl.lit(value).alias(column.name))
    return frame.with_columns(extra) if extra else frame


def insert_frame(conn: Connection, table: Table, frame: pl.DataFrame) -> int:
    """Insert every row of `frame` (columns named as the table's) into `table`."""
    if frame.height == 0:
        return 0
    unknown = set(frame.columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"columns not in {table.name}: {sorted(unknown)}")
    frame = with_defaults(frame, table)
    columns = ", ".join(frame.columns)
    dialect = conn.dialect.name
    raw = conn.connection.driver_connection
    if dialect == "postgresql":
        data = _prepared(frame, table, for_sqlite=False)
        buf = io.BytesIO()
        data.write_csv(buf, include_header=False, null_value="")
        with raw.cursor() as cur:
            with cur.copy(f"COPY {table.name} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buf.getvalue())
            if "id" in frame.columns:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
                )
    else:
        data = _prepared(frame, table, for_sqlite=True)
        placeholders = ", ".join("?" for _ in frame.columns)
        cur = raw.cursor()
        try:
            cur.executemany(
                f"INSERT INTO {table.name} ({columns}) VALUES ({placeholders})",
                data.iter_rows(),
            )
        finally:
            cur.close()
    return frame.height


def delete_ids(conn: Connection, table: Table, ids: list[int], column: str = "id") -> None:
    """Delete rows whose `column` is in `ids`, in chunks the drivers accept."""
    col = table.c[column]
    for start in range(0, len(ids), 5000):
        conn.execute(table.delete().where(col.in_(ids[start : start + 5000])))


def analyze(conn: Connection) -> None:
    """Refresh the planner's statistics after a big load."""
    conn.execute(text("ANALYZE"))
