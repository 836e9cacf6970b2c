"""Query results as polars frames, with the same types on SQLite and PostgreSQL.

SQLite returns dates as ISO strings and booleans as 0/1 integers; PostgreSQL returns
date and bool objects. Columns are built whole and converted vectorised.

Large results are the cost of an import (the loader reads the ledger's keys) and of a
report, so values do not travel one Python object each: the database writes each row as
one line of CSV text and polars parses the whole text at once. On PostgreSQL the query
runs as `COPY (query) TO STDOUT (FORMAT csv)` (NULL and '' stay apart: unquoted empty vs
quoted empty); on SQLite an outer query formats each row with printf(), strings quoted by
%Q and a bitmask of the NULL strings (so that NULL and 'NULL' stay apart). Types with no
exact round trip through that text, or a query the wrapping does not suit, fall back to
reading the rows from the DBAPI cursor (never through SQLAlchemy's Row objects). Every
path gives the same frame.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection, Date, TextClause, bindparam, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


def _column(name: str, values: tuple | list, dtype: PolarsDataType) -> pl.Series:
    if dtype == pl.Date:
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, str):
            return pl.Series(name, values, dtype=pl.String).str.to_date("%Y-%m-%d")
        if isinstance(sample, dt.datetime):
            return pl.Series(name, values, dtype=pl.Datetime).dt.date()
        return pl.Series(name, values, dtype=pl.Date)
    if dtype == pl.Boolean:
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, int) and not isinstance(sample, bool):
            return pl.Series(name, values, dtype=pl.Int64).cast(pl.Boolean)
        return pl.Series(name, values, dtype=pl.Boolean)
    if dtype.is_integer():
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, Decimal):  # PostgreSQL: SUM(bigint) is numeric
            return pl.Series(name, values, dtype=pl.Decimal(38, 0)).cast(dtype)
    return pl.Series(name, values, dtype=dtype)


def _check_names(names: list[str], schema: Mapping[str, PolarsDataType]) -> None:
    missing = [n for n in names if n not in schema]
    if missing:
        raise KeyError(f"no type given for columns {missing}")


def _rows_frame(
    conn: Connection, stmt: TextClause, params: dict, schema: Mapping[str, PolarsDataType]
) -> pl.DataFrame:
    result = conn.execute(stmt, params)
    names = list(result.keys())
    _check_names(names, schema)
    # The DBAPI cursor's plain tuples: the values SQLAlchemy would wrap in Row objects.
    cursor = getattr(result, "cursor", None)
    rows = cursor.fetchall() if cursor is not None else result.fetchall()
    result.close()
    if not rows:
        return pl.DataFrame(schema={n: schema[n] for n in names})
    columns = list(zip(*rows, strict=True))
    del rows
    return pl.DataFrame([_column(n, columns[i], schema[n]) for i, n in enumerate(names)])


def _csv_readable(dtype: PolarsDataType) -> bool:
    return dtype.is_integer() or dtype in (pl.String, pl.Date, pl.Boolean)


def _statement(sql: str, params: Mapping[str, object]) -> TextClause:
    """`sql` as a statement whose date parameters are bound as SQL dates."""
    stmt = text(sql)
    date_params = [bindparam(k, type_=Date) for k, v in params.items() if isinstance(v, dt.date)]
    return stmt.bindparams(*date_params) if date_params else stmt


def _subquery(sql: str) -> str:
    """`sql` ready to be nested in another statement: no trailing semicolon, and on lines of
    its own (a trailing -- comment must not swallow the closing parenthesis)."""
    return "\n" + sql.strip().rstrip(";").rstrip() + "\n"


_SQLITE_MAX_COLUMNS = 100  # printf() takes at most 127 arguments
_FETCH_ROWS = 50_000


def _sqlite_text_frame(
    conn: Connection, sql: str, params: dict, schema: Mapping[str, PolarsDataType]
) -> pl.DataFrame | None:
    """SQLite: every row formatted as one CSV line by SQLite, parsed by polars. None: not
    possible for this result (the caller reads rows instead)."""
    sql = _subquery(sql)
    probe = conn.execute(_statement(f"SELECT * FROM ({sql}) LIMIT 0", params), params)
    names = list(probe.keys())
    probe.close()
    _check_names(names, schema)
    if (
        not names
        or len(names) > _SQLITE_MAX_COLUMNS
        or len(set(names)) != len(names)
        or not all(_csv_readable(schema[n]) for n in names)
    ):
        return None
    # Strings and dates as printf's %Q: 'quoted', quotes doubled, and NULL as a bare NULL
    # that a one-integer mask (bit i: i-th text column is NULL) tells from the text 'NULL'.
    texts = [n for n in names if schema[n] in (pl.String, pl.Date)]
    if len(texts) > 62:
        return None
    fields, fmt = [], []
    for name in names:
        fields.append('"' + name.replace('"', '""') + '"')
        fmt.append("%Q" if name in texts else "%s")  # integers, booleans: digits, NULL: ''
    mask = " | ".join(f"(({fields[names.index(n)]} IS NULL) << {i})" for i, n in enumerate(texts))
    fields.append(mask or "0")
    # and a last constant field: no line is ever empty (polars skips empty lines)
    lines_sql = f"SELECT printf('{','.join(fmt)},%s,.', {', '.join(fields)}) FROM ({sql})"
    result = conn.execute(_statement(lines_sql, params), params)
    data = io.BytesIO()
    while rows := result.cursor.fetchmany(_FETCH_ROWS):  # plain 1-tuples, no Row objects
        data.write("\n".join([row[0] for row in rows]).encode())
        data.write(b"\n")
    result.close()
    if not data.tell():
        return pl.DataFrame(schema={n: schema[n] for n in names})
    data.seek(0)
    raw = {n: (pl.String if n in texts else pl.Int64) for n in names}
    frame = pl.read_csv(
        data,
        has_header=False,
        new_columns=[*names, "__nulls", "__end"],
        schema={**raw, "__nulls": pl.Int64, "__end": pl.String},
        quote_char="'",
    )
    del data
    columns = []
    for name in names:
        column = pl.col(name)
        if name in texts:
            is_null = (pl.col("__nulls") & (1 << texts.index(name))) != 0
            column = pl.when(is_null).then(None).otherwise(column)
            if schema[name] == pl.Date:
                column = column.str.to_date("%Y-%m-%d")
        elif schema[name] == pl.Boolean:
            column = column.cast(pl.Boolean)
        else:
            column = column.cast(schema[name])
        columns.append(column.alias(name))
    return frame.select(columns)


def _from_csv(name: str, values: pl.Series, dtype: PolarsDataType) -> pl.Series:
    """A column of COPY ... (FORMAT csv) text: NULL is null, '' is the empty string."""
    if dtype == pl.String:
        return values.alias(name)
    if dtype == pl.Date:
        return values.str.to_date("%Y-%m-%d").alias(name)
    if dtype == pl.Boolean:
        mapped = values.replace_strict({"t": True, "f": False}, default=None, return_dtype=dtype)
        if mapped.null_count() != values.null_count():
            raise ValueError(f"column {name}: not a PostgreSQL boolean")
        return mapped.alias(name)
    return values.cast(dtype, strict=True).alias(name)


def _copy_frame(
    conn: Connection, sql: str, params: dict, schema: Mapping[str, PolarsDataType]
) -> pl.DataFrame | None:
    """PostgreSQL: the result as CSV through COPY, parsed by polars. None: not possible
    (a type that has no exact text round trip here); the caller reads rows instead."""
    compiled = _statement(_subquery(sql), params).compile(dialect=conn.dialect)
    # psycopg adapts dates, numbers and strings itself; always a dict (even empty) so that
    # the %% escapes of the compiled pyformat SQL are undone.
    bound = dict(compiled.construct_params(params))
    buf = io.BytesIO()
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    with raw.cursor() as cur:
        copy_sql = f"COPY ({compiled.string}) TO STDOUT (FORMAT csv, HEADER true)"
        with cur.copy(copy_sql, bound) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    header = buf.readline().decode().rstrip("\r\n")
    buf.seek(0)
    names = next(csv.reader([header])) if header else []
    _check_names(names, schema)
    if not all(_csv_readable(schema[n]) for n in names) or len(set(names)) != len(names):
        return None
    frame = pl.read_csv(
        buf,
        has_header=True,
        schema={n: pl.String for n in names},
        quote_char='"',
    )
    del buf
    return pl.DataFrame([_from_csv(n, frame.get_column(n), schema[n]) for n in names])


def _postgresql_copy_frame(
    conn: Connection, sql: str, params: dict, schema: Mapping[str, PolarsDataType]
) -> pl.DataFrame | None:
    """`_copy_frame` in a savepoint: should COPY refuse a query that runs as is, the
    transaction stays usable and the caller reads the rows instead (which raises the
    query's own error, if it has one)."""
    import psycopg

    raw = conn.connection.driver_connection

    assert raw is not None, "the connection is closed"
    try:
        if raw.autocommit:  # no transaction to protect
            return _copy_frame(conn, sql, params, schema)
        with conn.begin_nested():
            return _copy_frame(conn, sql, params, schema)
    except (psycopg.Error, pl.exceptions.PolarsError, ValueError):
        return None


def query_frame(
    conn: Connection,
    sql: str,
    schema: Mapping[str, PolarsDataType],
    params: Mapping[str, object] | None = None,
    *,
    few_rows: bool = False,
) -> pl.DataFrame:
    """Run `sql` and return its rows as a frame typed by `schema` (column order kept).

    Parameters whose value is a date are bound as SQL dates on every database.
    `few_rows`: the result is small (a few hundred rows): read the rows as they are, which
    costs less than the text transfer's extra statements (COPY / printf + CSV parsing).
    """
    params = dict(params or {})
    stmt = _statement(sql, params)
    readable = not few_rows and all(_csv_readable(t) for t in schema.values())
    if conn.dialect.name == "postgresql" and readable:
        frame = _postgresql_copy_frame(conn, sql, params, schema)
        if frame is not None:
            return frame
    elif conn.dialect.name == "sqlite" and readable:
        try:
            frame = _sqlite_text_frame(conn, sql, params, schema)
        except (pl.exceptions.PolarsError, ValueError, DBAPIError):
            frame = None  # a value the text could not carry exactly: read the rows
        if frame is not None:
            return frame
    return _rows_frame(conn, stmt, params, schema)
