"""Bulk writes of whole frames: COPY on PostgreSQL, executemany on SQLite.

Rows move as columns (polars), never one Python object per row through the ORM. Ids are
assigned by the caller (`reserve_ids`) so that related rows (documents, payments,
allocations) can reference each other inside the same transaction.

Large loads (a batch of at least `BULK_ROWS` rows into a table holding fewer rows than the
batch, e.g. the first import of a ledger):

- SQLite builds the table's non-unique indexes once at the end instead of maintaining them
  row by row: they are dropped before the insert and recreated after it, with the same
  names and definitions (sqlite_master), in the caller's transaction. Primary keys, unique
  constraints, CHECK constraints and foreign keys stay enforced row by row. Readers are not
  affected (in WAL mode they keep reading the last committed state, schema included); on
  an error the caller's transaction rolls back, indexes included.
- PostgreSQL refreshes the table's statistics (ANALYZE) after the COPY, so that the reports
  run right after a first import are planned on the real sizes. Nothing is dropped there:
  dropping a foreign key would lock the referenced tables against readers until the commit,
  and dropping the indexes alone does not make COPY measurably faster.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import polars as pl
from sqlalchemy import Connection, Table, func, select, text

BULK_ROWS = 50_000
# conn.info key set by store.db.unit_of_work(enforce_foreign_keys=False): SQLite does not
# check the references of this transaction; every write must pass its known ids.
FOREIGN_KEYS_OFF = "encours.sqlite_foreign_keys_off"


class DanglingReference(ValueError):
    """Rows about to be written reference a parent row that does not exist."""


def check_references(
    conn: Connection, table: Table, frame: pl.DataFrame,
    references: Mapping[str, pl.Series] | None,
) -> None:  # fmt: skip
    """Every foreign-key column of `frame` holds ids of `references[column]` (nulls aside);
    DanglingReference otherwise. A column without its ids is left to the database, except
    in a transaction where SQLite does not check references (FOREIGN_KEYS_OFF): then it is
    a programming error (ValueError), so that no write there goes unchecked."""
    unchecked = bool(conn.info.get(FOREIGN_KEYS_OFF))
    for key in table.foreign_keys:
        column = key.parent.name
        if column not in frame.columns:
            continue
        values = frame.get_column(column).drop_nulls()
        known = (references or {}).get(column)
        if known is None or values.len() == 0:
            if unchecked and values.len():
                raise ValueError(f"{table.name}.{column}: references unchecked (no known ids)")
            continue
        missing = values.filter(~values.is_in(known.implode()))
        if missing.len():
            parent = key.column.table.name
            raise DanglingReference(f"{table.name}.{column}: {missing.len()} row(s) reference "
                                    f"no {parent} row (e.g. id {missing[0]})")  # fmt: skip


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


def _constant(values: pl.Series) -> bool:
    """True when every value of the column is the same (or every one is null)."""
    nulls = values.null_count()
    if nulls == values.len():
        return True
    if nulls or not (
        values.dtype.is_integer() or values.dtype in (pl.String, pl.Boolean, pl.Date, pl.Datetime)
    ):
        return False
    return bool((values == values[0]).all())


def _sqlite_literal(value: pl.Series) -> str | None:
    """SQL literal of the single value of `value` (already `_prepared`); None: keep it a
    bound parameter. Bound or inlined, SQLite stores the same value; inlining a column that
    holds one value for every row saves converting and binding it once per row."""
    first = value[0]
    if first is None:
        return "NULL"
    if value.dtype.is_integer():
        return str(int(first))
    if value.dtype == pl.String and "\x00" not in first:
        return "'" + first.replace("'", "''") + "'"
    return None


def _existing_rows(conn: Connection, table: Table, limit: int) -> int:
    """Rows in `table`, counted up to `limit`."""
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {table.name} LIMIT {int(limit)}) t"
    return int(conn.execute(text(sql)).scalar_one())


@contextmanager
def _bulk_load(conn: Connection, table: Table, rows: int) -> Iterator[None]:
    """Around the insert of `rows` rows into `table`: on SQLite, drop then recreate its
    non-unique indexes; on PostgreSQL, refresh its statistics afterwards (see above)."""
    dialect = conn.dialect.name
    if (
        rows < BULK_ROWS
        or dialect not in ("sqlite", "postgresql")
        or _existing_rows(conn, table, rows) >= rows
    ):
        yield
        return
    if dialect == "postgresql":
        yield
        owner = conn.execute(
            text(
                "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                "WHERE oid = CAST(:t AS regclass)"
            ),
            {"t": table.name},
        ).scalar()
        if owner:  # ANALYZE needs the owner; it locks out neither readers nor writers
            conn.execute(text(f"ANALYZE {table.name}"))
        return
    # pysqlite opens the transaction implicitly before INSERT/UPDATE/DELETE only: open it
    # now, or the DROP INDEX would be committed on its own.
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    if not raw.in_transaction:
        raw.execute("BEGIN")
    indexes = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
            "AND sql IS NOT NULL AND upper(sql) NOT LIKE 'CREATE UNIQUE%'"
        ),
        {"t": table.name},
    ).all()
    for name, _sql in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _name, sql in indexes:
        conn.execute(text(sql))


def insert_frame(
    conn: Connection, table: Table, frame: pl.DataFrame,
    references: Mapping[str, pl.Series] | None = None,
) -> int:  # fmt: skip
    """Insert every row of `frame` (columns named as the table's) into `table`.

    `references`: per foreign-key column, the ids it may hold (check_references)."""
    if frame.height == 0:
        return 0
    unknown = set(frame.columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"columns not in {table.name}: {sorted(unknown)}")
    check_references(conn, table, frame, references)
    frame = with_defaults(frame, table)
    columns = ", ".join(frame.columns)
    dialect = conn.dialect.name
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    with _bulk_load(conn, table, frame.height):
        if dialect == "postgresql":
            data = _prepared(frame, table, for_sqlite=False)
            buf = io.BytesIO()
            data.write_csv(buf, include_header=False, null_value="")
            del data
            copy_sql = f"COPY {table.name} ({columns}) FROM STDIN WITH (FORMAT csv)"
            with raw.cursor() as cur:
                with cur.copy(copy_sql) as copy:
                    copy.write(buf.getbuffer())
                if "id" in frame.columns:
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
                    )
        else:
            # Columns holding one value for every row are written as literals.
            literals: dict[str, str] = {}
            if frame.height > 1:
                for name in frame.columns:
                    if _constant(frame.get_column(name)):
                        one = _prepared(frame.select(name).head(1), table, for_sqlite=True)
                        literal = _sqlite_literal(one.to_series())
                        if literal is not None:
                            literals[name] = literal
            bound = [name for name in frame.columns if name not in literals]
            if not bound:  # nothing left to bind: bind everything
                literals, bound = {}, list(frame.columns)
            values = [literals.get(name, "?") for name in frame.columns]
            data = _prepared(frame.select(bound), table, for_sqlite=True)
            cur = raw.cursor()
            try:
                cur.executemany(
                    f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join(values)})",
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
