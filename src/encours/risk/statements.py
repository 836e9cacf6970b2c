"""Financial statements per customer and financial year: import, entry, evaluation.

CSV columns (header on line 1; `,` `;` or tab; UTF-8 or CP1252):
customer_id (the customer's code), fiscal_year, then any of period_end (YYYY-MM-DD),
currency (default: the customer's) and the amounts of `STATEMENT_FIELDS` (revenue,
value_added, personnel_expenses, ebe, ebit, financial_expenses, net_income, total_assets,
current_assets, inventories, current_liabilities, total_liabilities, long_term_debt,
equity, retained_earnings, working_capital, receivables, payables) in major units with a
`.` or `,` decimal separator (negative allowed: losses, negative equity). An empty cell is
a missing line (NULL), never 0. A file with a bad value is rejected whole with every error
(file, line, column, value, expected), like the ledger imports. Re-importing a customer's
year replaces it.

Every statement written (imported or entered) is audited: one audit_log entry per
statement (action `import_statement` or `enter_statement`, entity `financial_statement`,
key `CODE/YEAR`, before = the replaced statement or nothing, after = the new one).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, delete, select, tuple_

from encours.domain.ratios import RatioResult, compute_ratios
from encours.domain.scores import ScoreResult, altman_z2, conan_holder
from encours.imports.canonical import RowError
from encours.imports.encoding import decode_bytes
from encours.money import MoneyError, check_currency, from_minor, to_minor
from encours.store.frames import query_frame
from encours.store.risk_schema import STATEMENT_FIELDS, FinancialStatement
from encours.store.schema import Customer

TABLE = FinancialStatement.__table__
KEY_COLUMNS = ("customer_id", "fiscal_year")
OPTIONAL_COLUMNS = ("period_end", "currency")
FILE = "(file)"


class StatementsRejected(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s)")


@dataclass
class StatementImport:
    rows: int = 0
    inserted: int = 0
    replaced: int = 0
    errors: list[RowError] = field(default_factory=list)


def parse_amount(text: str, currency: str) -> int:
    """'1234,50' or '-1 234.50' -> minor units (MoneyError when not an exact amount)."""
    cleaned = text.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise MoneyError(text) from exc
    return to_minor(value, currency)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    text, _encoding = decode_bytes(path.read_bytes(), str(path))
    first = text.split("\n", 1)[0]
    separator = max((";", "\t", ","), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    for values in reader:
        line = reader.line_num
        if not header:
            header = [h.strip().lower() for h in values]
            continue
        if any(v.strip() for v in values):
            rows.append((line, values))
    return header, rows


def parse_statements(
    path: Path, customers: dict[str, tuple[int, str]]
) -> tuple[pl.DataFrame, list[RowError]]:
    """The file's statements as a frame of table columns, and every bad value.

    `customers`: code -> (id, currency). A statement file is small (one row per customer
    and year), so rows are checked one by one.
    """
    file = str(path)
    header, rows = _read_rows(path)
    errors: list[RowError] = []
    known = set(KEY_COLUMNS) | set(OPTIONAL_COLUMNS) | set(STATEMENT_FIELDS)
    for column in KEY_COLUMNS:
        if column not in header:
            errors.append(RowError(file, 1, column, "", "a column named " + column))
    for column in header:
        if column not in known:
            errors.append(RowError(file, 1, column, column, "one of " + ", ".join(sorted(known))))
    if not rows and not errors:
        errors.append(RowError(file, 1, FILE, "", "a header line and at least one row"))
    if errors:
        return pl.DataFrame(), errors
    records: list[dict[str, object]] = []
    seen: dict[tuple[int, int], int] = {}
    for line, values in rows:
        cell = {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}
        record: dict[str, object] = {"_line": line}
        code = cell["customer_id"]
        if code not in customers:
            errors.append(RowError(file, line, "customer_id", code, "the code of a known customer"))
            continue
        customer_id, customer_currency = customers[code]
        record["customer_id"] = customer_id
        try:
            year = int(cell["fiscal_year"])
            if not 1900 <= year <= 2999:
                raise ValueError
            record["fiscal_year"] = year
        except ValueError:
            errors.append(RowError(file, line, "fiscal_year", cell["fiscal_year"],
                                   "a year such as 2024"))  # fmt: skip
            continue
        if (customer_id, year) in seen:
            errors.append(RowError(file, line, "fiscal_year", str(year),
                                   f"one row per customer and year (also on line "
                                   f"{seen[(customer_id, year)]})"))  # fmt: skip
            continue
        seen[(customer_id, year)] = line
        end = cell.get("period_end", "")
        record["period_end"] = None
        if end:
            try:
                record["period_end"] = dt.date.fromisoformat(end)
            except ValueError:
                errors.append(RowError(file, line, "period_end", end,
                                       "a date in the ISO format YYYY-MM-DD"))  # fmt: skip
        currency = cell.get("currency", "") or customer_currency
        try:
            currency = check_currency(currency)
        except MoneyError:
            errors.append(RowError(file, line, "currency", currency, "an ISO 4217 code"))
            continue
        record["currency"] = currency
        for name in STATEMENT_FIELDS:
            raw = cell.get(name, "")
            record[f"{name}_minor"] = None
            if raw:
                try:
                    record[f"{name}_minor"] = parse_amount(raw, currency)
                except MoneyError:
                    errors.append(RowError(file, line, name, raw,
                                           f"an amount in {currency} (e.g. 1234.50), "
                                           "empty when unknown"))  # fmt: skip
        records.append(record)
    schema: dict[str, pl.DataType] = {
        "_line": pl.Int64(), "customer_id": pl.Int64(), "fiscal_year": pl.Int64(),
        "period_end": pl.Date(), "currency": pl.String(),
    }  # fmt: skip
    schema.update({f"{n}_minor": pl.Int64() for n in STATEMENT_FIELDS})
    return pl.DataFrame(records, schema=schema, orient="row"), errors


def _customer_codes(conn: Connection) -> dict[str, tuple[int, str]]:
    rows = conn.execute(select(Customer.id, Customer.code, Customer.currency)).all()
    return {code: (cid, currency) for cid, code, currency in rows}


def _audit_values(row: dict) -> dict[str, object]:
    """A statement row as JSON-able audit values (amounts in major units, as text)."""
    currency = row["currency"]
    values: dict[str, object] = {
        "fiscal_year": row["fiscal_year"], "currency": currency,
        "period_end": row["period_end"].isoformat() if row.get("period_end") else None,
    }  # fmt: skip
    for name in STATEMENT_FIELDS:
        minor = row.get(f"{name}_minor")
        if minor is not None:
            values[name] = str(from_minor(minor, currency))
    return values


def write_statements(
    conn: Connection, frame: pl.DataFrame, source: str, *, actor: str = "system",
    action: str = "import_statement",
) -> tuple[int, int]:  # fmt: skip
    """Insert the statements, replacing the same customer-years, with one audit entry per
    statement. (inserted, replaced)."""
    from encours.store import bulk
    from encours.store.schema import AuditEntry

    keys = list(frame.select("customer_id", "fiscal_year").iter_rows())
    codes = dict(conn.execute(select(Customer.id, Customer.code).where(
        Customer.id.in_({k[0] for k in keys}))).all())  # fmt: skip
    replaced = 0
    before: dict[tuple[int, int], dict] = {}
    for start in range(0, len(keys), 2000):
        chunk = keys[start : start + 2000]
        for old in conn.execute(
            select(TABLE).where(tuple_(TABLE.c.customer_id, TABLE.c.fiscal_year).in_(chunk))
        ).mappings():
            before[(old["customer_id"], old["fiscal_year"])] = _audit_values(dict(old))
        result = conn.execute(
            delete(TABLE).where(tuple_(TABLE.c.customer_id, TABLE.c.fiscal_year).in_(chunk))
        )
        replaced += result.rowcount or 0
    first = bulk.reserve_ids(conn, TABLE, frame.height)
    rows = frame.drop("_line", strict=False).with_columns(
        id=pl.int_range(first, first + frame.height, dtype=pl.Int64),
        source=pl.lit(source),
        updated_at=pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None)),
    )
    bulk.insert_frame(conn, TABLE, rows)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    entries = [
        {"at": now, "actor": actor, "action": action, "entity": "financial_statement",
         "entity_key": f"{codes[row['customer_id']]}/{row['fiscal_year']}",
         "before": before.get((row["customer_id"], row["fiscal_year"])),
         "after": {**_audit_values(row), "source": source}}
        for row in frame.iter_rows(named=True)
    ]  # fmt: skip
    if entries:
        conn.execute(AuditEntry.__table__.insert(), entries)
    return frame.height - replaced, replaced


def import_statements(conn: Connection, path: Path, actor: str = "system") -> StatementImport:
    """Import a statements CSV in the caller's transaction; StatementsRejected when bad."""
    frame, errors = parse_statements(Path(path), _customer_codes(conn))
    if errors:
        raise StatementsRejected(errors)
    inserted, replaced = write_statements(conn, frame, str(path), actor=actor)
    return StatementImport(rows=frame.height, inserted=inserted, replaced=replaced)


def save_statement(
    conn: Connection,
    customer_code: str,
    fiscal_year: int,
    amounts: dict[str, Decimal | int | str | None],
    *,
    period_end: dt.date | None = None,
    currency: str | None = None,
    source: str = "entered",
    actor: str = "system",
) -> bool:
    """Enter one statement (amounts in major units; None = unknown); replaces that year
    (audited). True when it replaced an existing statement of that year."""
    customers = _customer_codes(conn)
    if customer_code not in customers:
        raise KeyError(customer_code)
    unknown = set(amounts) - set(STATEMENT_FIELDS)
    if unknown:
        raise ValueError(f"unknown statement lines: {sorted(unknown)}")
    if not 1900 <= fiscal_year <= 2999:
        raise ValueError(f"fiscal year {fiscal_year}: a year such as 2024 expected")
    customer_id, customer_currency = customers[customer_code]
    currency = check_currency(currency or customer_currency)
    record: dict[str, object] = {
        "customer_id": customer_id, "fiscal_year": fiscal_year, "period_end": period_end,
        "currency": currency,
    }  # fmt: skip
    for name in STATEMENT_FIELDS:
        value = amounts.get(name)
        record[f"{name}_minor"] = None if value is None else to_minor(Decimal(value), currency)
    schema = {"customer_id": pl.Int64, "fiscal_year": pl.Int64, "period_end": pl.Date,
              "currency": pl.String}  # fmt: skip
    schema.update({f"{n}_minor": pl.Int64 for n in STATEMENT_FIELDS})
    _inserted, replaced = write_statements(
        conn, pl.DataFrame([record], schema=schema, orient="row"), source, actor=actor,
        action="enter_statement",
    )  # fmt: skip
    return replaced > 0


def latest_statements(
    conn: Connection, as_of: dt.date, customer_id: int | None = None
) -> pl.DataFrame:
    """Each customer's most recent statement available as of the day.

    A statement is available from its period end (31 December of the fiscal year when not
    given). One row per customer; set-based (one query, then polars).
    """
    columns = ", ".join(f"{n}_minor" for n in STATEMENT_FIELDS)
    only = "AND customer_id = :customer_id" if customer_id is not None else ""
    sql = f"""
        SELECT customer_id, fiscal_year, period_end, currency, {columns}
        FROM financial_statements WHERE fiscal_year <= :year {only}
    """
    schema: dict[str, pl.DataType] = {
        "customer_id": pl.Int64(), "fiscal_year": pl.Int64(), "period_end": pl.Date(),
        "currency": pl.String(),
    }  # fmt: skip
    schema.update({f"{n}_minor": pl.Int64() for n in STATEMENT_FIELDS})
    params: dict[str, object] = {"year": as_of.year}
    if customer_id is not None:
        params["customer_id"] = customer_id
    frame = query_frame(conn, sql, schema, params)
    frame = frame.with_columns(
        available=pl.coalesce(
            pl.col("period_end"), pl.date(pl.col("fiscal_year").cast(pl.Int32), 12, 31)
        )
    ).filter(pl.col("available") <= as_of)
    return frame.sort(["customer_id", "available"]).unique(
        subset=["customer_id"], keep="last", maintain_order=True
    )


def amounts_of(row: dict, currency: str) -> dict[str, Decimal | None]:
    """A statement row (`*_minor` columns) as {line: Decimal amount or None}."""
    return {
        name: None if row.get(f"{name}_minor") is None
        else from_minor(row[f"{name}_minor"], currency)
        for name in STATEMENT_FIELDS
    }  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    fiscal_year: int
    currency: str
    amounts: dict[str, Decimal | None]
    ratios: RatioResult
    altman: ScoreResult
    conan_holder: ScoreResult

    @property
    def missing_lines(self) -> tuple[str, ...]:
        return tuple(n for n, v in self.amounts.items() if v is None)


def evaluate(row: dict) -> Evaluation:
    """Ratios and both failure scores of one statement row."""
    amounts = amounts_of(row, row["currency"])
    return Evaluation(
        fiscal_year=row["fiscal_year"],
        currency=row["currency"],
        amounts=amounts,
        ratios=compute_ratios(amounts),
        altman=altman_z2(amounts),
        conan_holder=conan_holder(amounts),
    )


def customer_statements(conn: Connection, customer_id: int) -> list[Evaluation]:
    """Every statement of a customer, latest year first, evaluated."""
    rows = conn.execute(
        select(TABLE).where(TABLE.c.customer_id == customer_id).order_by(
            TABLE.c.fiscal_year.desc())
    ).mappings().all()  # fmt: skip
    return [evaluate(dict(r)) for r in rows]
