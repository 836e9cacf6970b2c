"""Query results as polars frames, with the same types on SQLite and PostgreSQL.

SQLite returns dates as ISO strings and booleans as 0/1 integers; PostgreSQL returns
date and bool objects. Columns are built whole and converted vectorised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

import polars as pl
from sqlalchemy import Connection, Date, bindparam, text


def _column(name: str, values: tuple | list, dtype: pl.DataType) -> pl.Series:
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


def query_frame(
    conn: Connection,
    sql: str,
    schema: Mapping[str, pl.DataType],
    params: Mapping[str, object] | None = None,
) -> pl.DataFrame:
    """Run `sql` and return its rows as a frame typed by `schema` (column order kept).

    Parameters whose value is a date are bound as SQL dates on every database.
    """
    params = dict(params or {})
    stmt = text(sql)
    date_params = [bindparam(k, type_=Date) for k, v in params.items() if isinstance(v, dt.date)]
    if date_params:
        stmt = stmt.bindparams(*date_params)
    result = conn.execute(stmt, params)
    names = list(result.keys())
    rows = result.fetchall()
    missing = [n for n in names if n not in schema]
    if missing:
        raise KeyError(f"no type given for columns {missing}")
    if not rows:
        return pl.DataFrame(schema={n: schema[n] for n in names})
    columns = list(zip(*rows, strict=True))
    return pl.DataFrame([_column(n, columns[i], schema[n]) for i, n in enumerate(names)])
