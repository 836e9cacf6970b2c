"""CSV and XLSX exports (canonical columns, or any layout with a mapping) -> CanonicalBatch.

`parse_table(path, kind, mapping)` reads a customers, invoices or payments file and returns a
`CanonicalBatch` whose frame (`customers`, `documents` or `payments`) holds the rows without
any error, typed and conformed to the canonical schema, and whose `errors` list every bad
value of the file (it never stops at the first one). Rows with at least one error are left
out of the frame; the caller decides whether a batch with errors may be loaded.

Reading a CSV:
* bytes: UTF-8 (BOM or not), else CP1252 (`decode_bytes`), or the mapping's encoding; a
  byte that is neither is one RowError naming its line;
* the separator (`,` `;` tab `|`) is detected on the header line unless the mapping gives it;
* physical lines are cut by polars (no Python loop); a quoted field holding line breaks is
  re-assembled into one record; fields are split with `str.split` (records whose quotes only
  surround whole fields are unquoted by dropping the quotes, the others go through a
  regular expression), so every row keeps the physical line it starts on (`_line`, header =
  line 1) and a row with the wrong number of fields is reported, never guessed;
* blank lines and rows whose fields are all empty are skipped; a row with more fields than
  the header is accepted when the extra fields are empty (a trailing separator).
XLSX: openpyxl in read-only mode; `_line` is the sheet row number; date cells are taken as
dates whatever the date format, numbers are read as Excel shows them (15 significant digits).

Values are parsed and checked with polars expressions on whole columns (the VAT numbers of a
customers file are checked with `encours.domain.identifiers.invalid_mask`: python-stdnum's
verdict, vectorised); the messages are
written for the bad rows only. Rows repeating a key (invoice number, payment id, customer
id) are dropped when identical to the first one, reported otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from encours.domain.identifiers import invalid_mask
from encours.i18n import _
from encours.imports.canonical import (
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
    RowError,
    conform,
    empty,
)
from encours.imports.encoding import EncodingError, decode_bytes
from encours.imports.mapping import (
    BOOL_WORDS,
    CHANNELS,
    DOCUMENT_TYPES,
    INPUT_COLUMNS,
    ISO_DATE,
    REQUIRED,
    ColumnType,
    Mapping,
    MappingError,
    SourceOptions,
)
from encours.money import MoneyError, check_currency, from_minor, minor_digits

Kind = Literal["customers", "invoices", "payments"]

ROW = "(row)"  # RowError.column of an error about a whole row (wrong number of fields...)
FILE = "(file)"  # RowError.column of an error about the whole file (encoding, empty...)
MAX_VALUE = 200  # characters of a bad value kept in a RowError
MAX_RECORD_LINES = 1000  # lines of one record (a quoted field may hold line breaks)

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "customers": CUSTOMER_SCHEMA,
    "invoices": DOCUMENT_SCHEMA,
    "payments": PAYMENT_SCHEMA,
}
KEYS = {"customers": "customer_id", "invoices": "invoice_number", "payments": "payment_id"}
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_XLSX_SUFFIXES = (".xlsx", ".xlsm")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_BOM = b"\xef\xbb\xbf"

# The `expected` texts of the RowErrors are English msgids, translated when the file is read.
REQUIRED_MSG = "a value (this column is required)"
BOOL_MSG = "a boolean: true/false, yes/no, 1/0, oui/non"
CURRENCY_MSG = "a 3-letter ISO 4217 currency code such as EUR"
DOCUMENT_TYPE_MSG = "invoice or credit_note"
CHANNEL_MSG = "paper or electronic"
RATE_MSG = "a percentage >= 0 such as 10.5"
SIREN_MSG = "a SIREN: 9 digits with a valid check digit"
SIRET_MSG = "a SIRET: 14 digits with a valid check digit"
VAT_MSG = "an intra-EU VAT number such as FR40303265045"
EMAIL_MSG = "an email address"
HEADER_AND_ROW_MSG = "a header line and at least one row"
MIN_YEAR, MAX_YEAR = 1900, 2199
MAX_INTEGER_DIGITS = 15  # amounts below 10**15 (Int64 minor units stay exact)


def _known_currencies() -> frozenset[str]:
    try:
        from babel.numbers import list_currencies

        return frozenset(list_currencies())
    except Exception:  # pragma: no cover - babel is a dependency; fall back to the syntax only
        return frozenset()


_CURRENCIES = _known_currencies()


class _FileProblem(Exception):
    """Something that stops the reading of the whole file, reported as one RowError."""

    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error


def _clip(value: str) -> str:
    return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 3] + "..."


# --------------------------------------------------------------------------------------
# entry point


def parse_table(
    path: Path,
    kind: Kind,
    mapping: Mapping | None = None,
    default_currency: str = "EUR",
) -> CanonicalBatch:
    """Parse a CSV or XLSX export into a CanonicalBatch of `kind`, with every bad value.

    Without a mapping the file has the canonical columns of docs/formats.md (ISO dates,
    `.` or `,` decimals). `default_currency` is the currency of a customer whose `currency`
    is empty; invoices and payments need a currency column (or a mapping constant).
    """
    if kind not in SCHEMAS:
        raise ValueError(f"unknown kind {kind!r}: expected customers, invoices or payments")
    if mapping is not None:
        _check_mapping_kind(mapping, kind)
    try:
        default_currency = check_currency(default_currency)
    except MoneyError as exc:
        raise ValueError(f"default_currency: {exc}") from exc
    path = Path(path)
    file = str(path)
    options = mapping.source if mapping is not None else SourceOptions()
    batch = CanonicalBatch(source=file)
    frame_attr = {"customers": "customers", "invoices": "documents", "payments": "payments"}[kind]
    setattr(batch, frame_attr, empty(SCHEMAS[kind]))

    data = path.read_bytes()
    try:
        if path.suffix.lower() in _XLSX_SUFFIXES or data.startswith(_ZIP_MAGIC):
            source: _CsvSource | _XlsxSource = _XlsxSource(data, file, options)
        elif data.startswith(_OLE_MAGIC) or path.suffix.lower() == ".xls":
            raise _FileProblem(
                RowError(file, 1, FILE, "", _("a CSV or XLSX file (save the .xls file as .xlsx)"))
            )
        else:
            source = _CsvSource(data, file, options)
        ctx = _Context.build(file, kind, mapping, source.header, source.header_line)
        raw = source.extract(ctx.sources)
    except _FileProblem as problem:
        batch.errors.append(problem.error)
        return batch

    errors = list(ctx.errors) + source.errors
    frame, value_errors = _validate(raw, ctx, default_currency, strip=source.padded)
    errors.extend(value_errors)
    if ctx.structural:
        frame = frame.clear()
    setattr(batch, frame_attr, frame)
    if kind == "customers":
        batch.customer_fields = frozenset(  # canonical names: amounts in minor units
            f"{c}_minor" if ctx.spec[c] == "amount" else c
            for c in ctx.spec
            if c in ctx.sources or c in ctx.constants
        )
    order = {name: i for i, name in enumerate(INPUT_COLUMNS[kind])}
    errors.sort(key=lambda e: (e.line, order.get(e.column.split(" ")[0], -1)))
    batch.errors = errors
    return batch


def _check_mapping_kind(mapping: Mapping, kind: str) -> None:
    if mapping.kind is not None and mapping.kind != kind:
        raise MappingError(
            _("{mapping}: kind = {kind!r}, but importing {importing}").format(
                mapping=mapping.name, kind=mapping.kind, importing=kind
            )
        )
    sections: dict[str, Any] = {
        "columns": mapping.columns,
        "date_formats": mapping.date_formats,
        "values": mapping.values,
        "constants": mapping.constants,
    }
    for section, table in sections.items():
        for column in table:
            if column not in INPUT_COLUMNS[kind]:
                raise MappingError(
                    _(
                        "{mapping}: {key}: not a column of {kind} "
                        "(the {kind} columns are: {columns})"
                    ).format(
                        mapping=mapping.name, key=f"{section}.{column}", kind=kind,
                        columns=", ".join(INPUT_COLUMNS[kind]),
                    )
                )  # fmt: skip


# --------------------------------------------------------------------------------------
# CSV


class _CsvSource:
    """A CSV file cut into records: `_line` (the record's first physical line), `text`."""

    def __init__(self, data: bytes, file: str, options: SourceOptions) -> None:
        self.file = file
        self.errors: list[RowError] = []
        self.padded = True  # some field may have spaces around it (set by extract)
        utf8 = self._utf8(data, options.encoding)
        self.has_quotes = b'"' in utf8
        self.unit_separator = next(
            (c for c in "\x1f\x1e\x1d\x1c\ue000\ue001\ue002" if c.encode() not in utf8),
            "\U0010fffd",
        )
        lines = _physical_lines(utf8)
        if options.skip_rows:
            lines = lines.filter(pl.col("_line") > options.skip_rows)
        first = lines.filter(pl.col("text").str.contains(r"\S")).head(1)
        if first.height == 0:
            raise _FileProblem(RowError(file, 1, FILE, "", _(HEADER_AND_ROW_MSG)))
        self.separator = options.separator or _detect_separator(first["text"][0])
        records = _records(lines, self.separator) if self.has_quotes else lines
        records = records.filter(pl.col("text").str.contains(r"\S"))
        header_line, header_text = records["_line"][0], records["text"][0]
        self.header = _split_header(header_text, self.separator)
        self.header_line = int(header_line)
        sep = _rx(self.separator)
        self.records = records.slice(1).filter(~pl.col("text").str.contains(f'^[\\s"{sep}]*$'))
        if self.records.height == 0:
            raise _FileProblem(
                RowError(file, self.header_line, FILE, _clip(header_text),
                         _(HEADER_AND_ROW_MSG))
            )  # fmt: skip

    def _utf8(self, data: bytes, encoding: str | None) -> bytes:
        """The file as UTF-8 bytes without BOM (no copy when it already is)."""
        if encoding in (None, "utf-8") and data.startswith(_BOM):
            data = data[len(_BOM) :]
        if encoding is None:
            if data.isascii():
                return data
            try:
                _decoded, found = decode_bytes(data, self.file)
            except EncodingError as exc:
                cause = exc.__cause__
                start = cause.start if isinstance(cause, UnicodeDecodeError) else 0
                raise self._encoding_problem(data, start, _("UTF-8 or CP1252 text")) from exc
            if found == "utf-8":
                return data
            encoding = found
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self._encoding_problem(
                data, exc.start, _("{encoding} text").format(encoding=encoding)
            ) from exc
        return data if encoding == "utf-8" else text.encode("utf-8")

    def _encoding_problem(self, data: bytes, start: int, expected: str) -> _FileProblem:
        line = data.count(b"\n", 0, start) + 1
        return _FileProblem(
            RowError(
                self.file, line, FILE, f"byte 0x{data[start]:02x}",
                _("{expected} (set [source] encoding in a mapping for another encoding)")
                .format(expected=expected),
            )
        )  # fmt: skip

    def extract(self, sources: dict[str, int]) -> pl.DataFrame:
        """The records split into fields; one String column per canonical column."""
        n = len(self.header)
        sep = self.separator
        text = self.records["text"]
        ok: pl.Series | None = None
        split_on = sep
        if self.has_quotes:
            # "Simple" records: quotes only around whole fields holding no separator, quote or
            # line break. Their quotes are all delimiters: removing them is unquoting.
            s = _rx(sep)
            field_rx = f'(?:"[^"{s}\\n]*"|[^"{s}]*)'
            flags = pl.DataFrame({"text": text}).select(
                pl.col("text").str.contains('"', literal=True).alias("quoted"),
                pl.col("text").str.contains(f"^{field_rx}(?:{s}{field_rx})*$").alias("simple"),
            )
            cleaned = (
                pl.DataFrame({"text": text, "quoted": flags["quoted"]})
                .select(
                    pl.when(pl.col("quoted"))
                    .then(pl.col("text").str.replace_all('"', "", literal=True))
                    .otherwise(pl.col("text"))
                )
                .to_series()
            )
            hard = (flags["quoted"] & ~flags["simple"]).arg_true()
            if hard.len():
                # the others: a regular expression per field, then fields joined with a
                # character absent from the file, so that one split serves every record
                unit = self.unit_separator
                pattern = f'{s}("(?:[^"]|"")*"|[^{s}"][^{s}]*|)'
                matches = (sep + text.gather(hard)).str.extract_all(pattern)
                covered = matches.list.eval(pl.element().str.len_bytes()).list.sum().fill_null(0)
                value = pl.element().str.slice(1)
                unquoted = (
                    pl.when(value.str.starts_with('"'))
                    .then(
                        value.str.strip_prefix('"')
                        .str.strip_suffix('"')
                        .str.replace_all('""', '"', literal=True)
                    )
                    .otherwise(value)
                )
                joined = matches.list.eval(unquoted).list.join(unit)
                if unit != sep:
                    cleaned = cleaned.str.replace_all(sep, unit, literal=True)
                cleaned = cleaned.scatter(hard, joined)
                good = covered == text.gather(hard).str.len_bytes() + len(sep)
                ok = pl.repeat(True, len(text), eager=True).scatter(hard, good)
                split_on = unit
        joined_text = cleaned if self.has_quotes else text
        # is there a space to strip around a field? (most machine exports have none)
        u = _rx(split_on)
        self.padded = bool(joined_text.str.contains(f"^\\s|\\s$|\\s{u}|{u}\\s").any())
        fields = joined_text.str.split(split_on)
        count = fields.list.len()
        rows = pl.DataFrame({"_line": self.records["_line"], "_fields": fields})
        wrong = count != n if ok is None else (count != n) | ~ok
        if wrong.any():
            rows = rows.filter(self._field_errors(rows, wrong, count, ok, n))
        return rows.select(
            pl.col("_line").cast(pl.Int64),
            *[pl.col("_fields").list.get(i).alias(name) for name, i in sources.items()],
        )

    def _field_errors(
        self,
        rows: pl.DataFrame,
        wrong: pl.Series,
        count: pl.Series,
        ok: pl.Series | None,
        n: int,
    ) -> pl.Series:
        """Report the records whose fields do not match the header; the mask of rows to keep.

        A record with more fields than the header is kept when the extra fields are empty
        (a trailing separator)."""
        where = wrong.arg_true()
        odd = rows.gather(where).with_columns(
            count.gather(where).alias("_count"),
            (ok.gather(where) if ok is not None else pl.repeat(True, len(where), eager=True)).alias(
                "_ok"
            ),
            self.records["text"].gather(where).str.slice(0, MAX_VALUE + 1).alias("_text"),
            (
                self.records["text"].gather(where).str.count_matches('"', literal=True) % 2 == 1
            ).alias("_unclosed"),
        )
        extra_filled = (
            pl.col("_fields").list.slice(n).list.eval(pl.element().str.contains(r"\S")).list.any()
        )
        odd = odd.with_columns(
            (pl.col("_ok") & (pl.col("_count") > n) & ~extra_filled).alias("_fine")
        )
        sep = _SEPARATOR_NAMES.get(self.separator, repr(self.separator))
        if self.separator == "\t":
            sep = _("tab")
        unclosed_msg = _(
            'a closing quote (") for the quoted field opened on this line, and no '
            "character between a closing quote and the next separator"
        )
        quotes_msg = _(
            'well-formed quotes: a field is either entirely in quotes (with "" for a '
            "quote inside) or has no quote at its start"
        )
        fields_msg = _("{n} fields separated by {sep} as in the header (line {line}), got {got}")
        for line, text, is_ok, unclosed, fields in (
            odd.filter(~pl.col("_fine"))
            .select("_line", "_text", "_ok", "_unclosed", "_count")
            .iter_rows()
        ):
            if not is_ok and unclosed:
                expected = unclosed_msg
            elif not is_ok:
                expected = quotes_msg
            else:
                expected = fields_msg.format(n=n, sep=sep, line=self.header_line, got=fields)
            self.errors.append(RowError(self.file, line, ROW, _clip(text), expected))
        dropped = where.filter(~odd["_fine"])
        return pl.repeat(True, rows.height, eager=True).scatter(dropped, False)


def _physical_lines(data: bytes) -> pl.DataFrame:
    """`_line` (1-based) and `text` of every physical line; "\\r\\n" and "\\r" handled."""
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")
    schema = {"_line": pl.Int64, "text": pl.String}
    if not data or data.isspace():
        return pl.DataFrame(schema=schema)
    for byte in ("\x00", "\x01", "\x1e", "\x1f"):
        if byte.encode() not in data:
            text = pl.read_csv(
                data,
                has_header=False,
                separator=byte,
                quote_char=None,
                schema={"text": pl.String},
            )["text"].fill_null("")
            break
    else:  # every candidate byte is in the file: binary garbage, read it the slow way
        text = pl.Series("text", data.decode("utf-8").split("\n"), dtype=pl.String)
        text = text.str.strip_suffix("\r")
        if data.endswith(b"\n"):
            text = text.head(-1)
    return pl.DataFrame({"text": text}).select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_line"), "text"
    )


def _records(lines: pl.DataFrame, separator: str) -> pl.DataFrame:
    """Join the lines of a quoted field that spans lines into one record.

    Only a line with an odd number of quotes that is not a well-formed record by itself
    opens such a field (so a stray quote, as in `12" screen`, stays on its line); the field
    closes on the first following line that makes the number of quotes even (at most
    `MAX_RECORD_LINES` lines). An unclosed quote, or lines that do not join into a
    well-formed record, leave the opening line alone: an error on that line, not the end of
    the file. The work stays linear in the size of the file."""
    s = _rx(separator)
    field_rx = f'(?:"(?:[^"]|"")*"|[^"{s}][^{s}]*|)'
    complete_rx = f"^{field_rx}(?:{s}{field_rx})*$"
    odd = pl.col("text").str.count_matches('"', literal=True) % 2 == 1
    openers = (
        lines.with_row_index("_index")
        .filter(odd)
        .filter(~pl.col("text").str.contains(complete_rx))["_index"]
        .to_list()
    )
    if not openers:
        return lines
    complete = re.compile(complete_rx, re.DOTALL)
    texts = lines["text"]
    joined: list[str] = []
    where: list[int] = []
    consumed: list[int] = []
    last = -1
    for index in openers:
        if index <= last:
            continue  # inside a record already joined
        # the quoted field closes on the first line that makes the number of quotes even
        quotes = texts[index].count('"')
        following = index
        while quotes % 2 and following + 1 < min(index + MAX_RECORD_LINES, len(texts)):
            following += 1
            quotes += texts[following].count('"')
        if quotes % 2:
            continue  # never closed: the opening line alone is reported as malformed
        record = "\n".join(texts.slice(index, following - index + 1).to_list())
        if complete.fullmatch(record):
            joined.append(record)
            where.append(index)
            consumed.extend(range(index + 1, following + 1))
            last = following
    if not where:
        return lines
    line_numbers = lines["_line"]
    text = texts.clone().scatter(where, joined)
    keep = pl.repeat(True, len(texts), eager=True).scatter(consumed, False)
    return pl.DataFrame({"_line": line_numbers, "text": text}).filter(keep)


def _rx(separator: str) -> str:
    """The separator inside a regular expression (also inside a character class)."""
    return {"\t": "\\t", "|": "\\|"}.get(separator, re.escape(separator))


def _detect_separator(header: str) -> str:
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {sep: unquoted.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _split_header(text: str, separator: str) -> list[str]:
    try:
        row = next(csv.reader(io.StringIO(text), delimiter=separator), [])
    except csv.Error:
        row = text.split(separator)
    names = [name.strip().lstrip("\ufeff") for name in row]
    while names and not names[-1]:
        names.pop()  # a trailing separator
    return names


# --------------------------------------------------------------------------------------
# XLSX


class _XlsxSource:
    """The rows of one sheet; `_line` is the sheet row number."""

    def __init__(self, data: bytes, file: str, options: SourceOptions) -> None:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        self.file = file
        self.errors: list[RowError] = []
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise _FileProblem(
                RowError(file, 1, FILE, "", _("an XLSX workbook (Excel 2007 or later)"))
            ) from exc
        try:
            if options.sheet is not None:
                if options.sheet not in book.sheetnames:
                    raise _FileProblem(
                        RowError(file, 1, FILE, options.sheet,
                                 _("a sheet named so (the sheets are: {sheets})").format(
                                     sheets=", ".join(book.sheetnames)))
                    )  # fmt: skip
                sheet = book[options.sheet]
            else:
                sheet = book.worksheets[0]
            rows = [
                (number, row)
                for number, row in enumerate(sheet.iter_rows(values_only=True), start=1)
                if number > options.skip_rows and any(_filled(v) for v in row)
            ]
        except _FileProblem:
            raise
        except Exception as exc:  # a damaged workbook: openpyxl raises many kinds of errors
            raise _FileProblem(
                RowError(
                    file,
                    1,
                    FILE,
                    "",
                    _("a readable XLSX workbook ({error})").format(error=exc.__class__.__name__),
                )
            ) from exc
        finally:
            book.close()
        if len(rows) < 2:
            raise _FileProblem(RowError(file, 1, FILE, "", _(HEADER_AND_ROW_MSG)))
        self.header_line, header = rows[0]
        names = ["" if v is None else _cell_text(v).strip() for v in header]
        while names and not names[-1]:
            names.pop()
        self.header = names
        self.rows = rows[1:]
        self.padded = True

    def extract(self, sources: dict[str, int]) -> pl.DataFrame:
        columns: dict[str, pl.Series] = {
            "_line": pl.Series("_line", [n for n, _row in self.rows], dtype=pl.Int64)
        }
        for name, i in sources.items():
            texts: list[str | None] = []
            dates: list[dt.date | None] = []
            for _number, row in self.rows:
                value = row[i] if i < len(row) else None
                if isinstance(value, dt.datetime):
                    dates.append(value.date())
                elif isinstance(value, dt.date):
                    dates.append(value)
                else:
                    dates.append(None)
                texts.append(None if value is None else _cell_text(value))
            columns[name] = pl.Series(name, texts, dtype=pl.String)
            if any(d is not None for d in dates):
                columns[_native(name)] = pl.Series(_native(name), dates, dtype=pl.Date)
        return pl.DataFrame(columns)


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _cell_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")  # what Excel shows: 15 significant digits
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _native(name: str) -> str:
    return f"__native_{name}"


# --------------------------------------------------------------------------------------
# columns: which source column feeds which canonical column


@dataclass
class _Context:
    file: str
    kind: str
    mapping: Mapping | None
    spec: dict[str, ColumnType]
    sources: dict[str, int]  # canonical -> index of the source column
    constants: dict[str, str]
    labels: dict[str, str]  # canonical -> "amount (InvoiceAmount)"
    errors: list[RowError] = field(default_factory=list)
    structural: bool = False  # a header error: the columns do not fit, no row is kept

    @classmethod
    def build(
        cls, file: str, kind: str, mapping: Mapping | None, header: list[str], header_line: int
    ) -> _Context:
        spec = INPUT_COLUMNS[kind]
        constants = dict(mapping.constants) if mapping else {}
        mapped = dict(mapping.columns) if mapping else {}
        used = set(mapped.values())
        exact: dict[str, list[int]] = {}
        folded: dict[str, list[int]] = {}
        for i, name in enumerate(header):
            if name:
                exact.setdefault(name, []).append(i)
                folded.setdefault(name.casefold(), []).append(i)
        ctx = cls(file, kind, mapping, spec, {}, constants, {})
        for column in spec:
            if column in constants:
                ctx.labels[column] = f"{column} (constant)"
                continue
            explicit = column in mapped
            name = mapped[column] if explicit else column
            ctx.labels[column] = f"{column} ({name})" if name != column else column
            if not explicit and name in used:
                found: list[int] = []  # that source column feeds another canonical column
            else:
                found = exact.get(name) or folded.get(name.casefold(), [])
            if len(found) > 1:
                ctx.errors.append(
                    RowError(file, header_line, ctx.labels[column], name,
                             _("a single column named {name!r} (it appears {n} times)").format(
                                 name=name, n=len(found)))
                )  # fmt: skip
                ctx.structural = True
            elif found:
                ctx.sources[column] = found[0]
            elif explicit or column in REQUIRED[kind]:
                where = ""
                if explicit and mapping:
                    where = _(" (mapped to {column} by {mapping})").format(
                        column=column, mapping=mapping.name
                    )
                hint = ""
                if not explicit and mapping is not None:
                    hint = _(" (or a [columns] or [constants] entry in the mapping)")
                ctx.errors.append(
                    RowError(file, header_line, ctx.labels[column], "",
                             _("a column named {name!r}{where}{hint}").format(
                                 name=name, where=where, hint=hint))
                )  # fmt: skip
                ctx.structural = True
        return ctx


# --------------------------------------------------------------------------------------
# values: parse and check every column with polars expressions


def _validate(
    raw: pl.DataFrame, ctx: _Context, default_currency: str, *, strip: bool = True
) -> tuple[pl.DataFrame, list[RowError]]:
    """Parse and check every column with polars expressions, in a few materialised stages.

    Each checked column gets an error code column `__e_<column>` (null: fine); the messages
    are written for the bad rows only."""
    kind, spec, mapping = ctx.kind, ctx.spec, ctx.mapping
    options = mapping.source if mapping else SourceOptions()
    required = set(REQUIRED[kind])
    sourced = [c for c in spec if c in ctx.sources]
    constants = {c: v for c, v in ctx.constants.items() if c in spec}
    present = [c for c in spec if c in ctx.sources or c in constants]

    # 1. text: stripped (when a field may have spaces around it), "" -> null; constants
    frame = raw.with_columns(pl.col(c).str.strip_chars() for c in sourced) if strip else raw
    frame = frame.with_columns(
        *[pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in sourced],
        *[pl.lit(value, dtype=pl.String).alias(c) for c, value in constants.items()],
    )

    # 2. value maps: their targets are canonical text, parsed with the canonical rules
    inputs: dict[str, pl.Expr] = {c: pl.col(c) for c in present}
    canonical: dict[str, pl.Expr] = {c: pl.lit(True) for c in constants}
    stage: list[pl.Expr] = []
    for column, value_map in (mapping.values if mapping else {}).items():
        if column not in ctx.sources:
            continue
        keys = list(value_map)
        text = pl.col(column).fill_null("") if "" in value_map else pl.col(column)  # "" = empty
        hit = text.is_in(keys)
        mapped = text.replace_strict(
            keys, [value_map[k] for k in keys], default=None, return_dtype=pl.String
        )
        stage += [
            pl.when(hit).then(mapped).otherwise(pl.col(column)).alias(f"__in_{column}"),
            hit.alias(f"__canon_{column}"),
        ]
        inputs[column] = pl.col(f"__in_{column}")
        canonical[column] = pl.col(f"__canon_{column}")
    if stage:
        frame = frame.with_columns(stage)

    # 3. currency first: the amounts depend on its minor unit
    codes: dict[str, pl.Expr] = {}
    currency = inputs.get("currency", pl.lit(None, dtype=pl.String)).str.to_uppercase()
    if kind == "customers":
        currency = currency.fill_null(default_currency)
    frame = frame.with_columns(currency.alias("__currency"))
    currency_ok = pl.col("__currency").str.contains(r"^[A-Z]{3}$")
    if _CURRENCIES:
        currency_ok = currency_ok & pl.col("__currency").is_in(list(_CURRENCIES))
    frame = frame.with_columns(
        pl.when(currency_ok).then(pl.col("__currency")).alias("__v_currency")
    )
    digit_map = {c: minor_digits(c) for c in frame["__v_currency"].drop_nulls().unique()}
    frame = frame.with_columns(
        pl.col("__v_currency")
        .replace_strict(digit_map, default=2, return_dtype=pl.Int64)
        .fill_null(2)
        .alias("__digits")
    )
    if "currency" in present:
        codes["currency"] = _codes(
            (pl.col("__currency").is_null(), 1) if "currency" in required else None,
            (pl.col("__currency").is_not_null() & pl.col("__v_currency").is_null(), 2),
        )

    # 4. parse: one materialised column per typed column
    stage = []
    for column in present:
        ctype, x = spec[column], inputs[column]
        canon = canonical.get(column)
        if ctype == "date":
            fmt = mapping.date_format(column) if mapping else ISO_DATE
            parsed = _to_date(x, fmt)
            if canon is not None and fmt != ISO_DATE:
                parsed = pl.when(canon).then(_to_date(x, ISO_DATE)).otherwise(parsed)
            if _native(column) in frame.columns:
                parsed = pl.coalesce(pl.col(_native(column)), parsed)
        elif ctype == "bool":
            parsed = x.str.to_lowercase().replace_strict(
                BOOL_WORDS, default=None, return_dtype=pl.Boolean
            )
        elif ctype in ("document_type", "channel"):
            table = DOCUMENT_TYPES if ctype == "document_type" else CHANNELS
            parsed = x.str.to_lowercase().replace_strict(
                table, default=None, return_dtype=pl.String
            )
        elif ctype == "amount":
            parsed = _amount_parts(x, options, canon)
        elif ctype == "rate":
            parsed = x.str.replace(r"\s*%$", "").str.replace(",", ".", literal=True)
        elif ctype in ("siren", "siret"):
            parsed = x.str.replace_all(r"[\s.\-/]", "")
        elif ctype == "vat":
            parsed = x.str.replace_all(r"[\s.\-/]", "").str.to_uppercase()
        else:
            continue
        stage.append(parsed.alias(f"__p_{column}"))
    if stage:
        frame = frame.with_columns(stage)
    # identifiers: python-stdnum's verdict, vectorised (stdnum sees only the odd values)
    identifiers = [c for c in present if spec[c] in ("siren", "siret", "vat")]
    if identifiers:
        frame = frame.with_columns(
            (
                invalid_mask(frame[f"__p_{c}"], spec[c])  # type: ignore[arg-type]
                | (frame[f"__p_{c}"] == "").fill_null(False)  # nothing but separators
            ).alias(f"__x_{c}")
            for c in identifiers
        )

    # 5. values and error codes
    values: dict[str, pl.Expr] = {"currency": pl.col("__v_currency")}
    for column in present:
        ctype, x = spec[column], inputs[column]
        if column == "currency":
            continue
        p = pl.col(f"__p_{column}")
        missing = (x.is_null(), 1) if column in required else None
        bad_when_set = None
        if ctype in ("id", "text"):
            values[column] = x
        elif ctype == "date":
            year = p.dt.year()
            values[column] = pl.when((year >= MIN_YEAR) & (year <= MAX_YEAR)).then(p)
            bad_when_set = ~year.is_between(MIN_YEAR, MAX_YEAR).fill_null(False)
        elif ctype in ("bool", "document_type", "channel"):
            values[column] = p
            bad_when_set = p.is_null()
        elif ctype == "amount":
            value, amount_codes = _amount_value(p, positive=(column == "amount"))
            values[column] = pl.when(x.is_not_null()).then(value)
            codes[column] = _codes(missing, *[(x.is_not_null() & c, k) for c, k in amount_codes])
            continue
        elif ctype == "rate":
            ok = p.str.contains(r"^\d+(\.\d+)?$")
            values[column] = pl.when(ok).then(p)
            bad_when_set = ~ok
        elif ctype in ("siren", "siret", "vat"):
            ok = ~pl.col(f"__x_{column}")
            values[column] = pl.when(ok).then(p)
            bad_when_set = ~ok
        elif ctype == "email":
            ok = x.str.contains(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
            values[column] = pl.when(ok).then(x)
            bad_when_set = ~ok
        if missing is not None or bad_when_set is not None:
            codes[column] = _codes(
                missing, (x.is_not_null() & bad_when_set, 2) if bad_when_set is not None else None
            )
    if kind == "invoices":
        values["document_type"] = values.get(
            "document_type", pl.lit(None, dtype=pl.String)
        ).fill_null("invoice")
    frame = frame.with_columns(
        *[expr.alias(f"__v_{c}") for c, expr in values.items() if c != "currency"],
        *[expr.alias(f"__e_{c}") for c, expr in codes.items()],
    )

    # 6. checks across columns
    cross: list[pl.Expr] = []
    if kind == "invoices" and "due_date" in codes and "issue_date" in values:
        early = pl.col("__v_due_date") < pl.col("__v_issue_date")
        cross.append(pl.coalesce("__e_due_date", pl.when(early).then(pl.lit(3, pl.UInt8))))
    if kind == "customers" and "siret" in codes and "siren" in values:
        other = pl.col("__v_siret").str.slice(0, 9) != pl.col("__v_siren")
        cross.append(pl.coalesce("__e_siret", pl.when(other).then(pl.lit(3, pl.UInt8))))
    if cross:
        frame = frame.with_columns(cross)

    # 7. errors, then the good rows without duplicates
    found: list[RowError] = []
    if codes:
        bad_row = pl.any_horizontal([pl.col(f"__e_{c}").is_not_null() for c in codes])
        frame = frame.with_columns(bad_row.alias("__bad"))
        bad = frame.filter(pl.col("__bad"))
        if bad.height:
            found = _messages(bad, codes, ctx)
            frame = frame.filter(~pl.col("__bad"))
    outputs = {c: f"{c}_minor" if spec.get(c) == "amount" else c for c in values}
    good = frame.select("_line", *[pl.col(f"__v_{c}").alias(name) for c, name in outputs.items()])
    good, duplicates = _deduplicate(good, frame, ctx)
    found.extend(duplicates)
    return conform(good, SCHEMAS[kind]), found


def _codes(*checks: tuple[pl.Expr, int] | None) -> pl.Expr:
    """The code of the first failing check (null when every check passes)."""
    expr: Any = None
    for check in checks:
        if check is None:
            continue
        condition, code = check
        value = pl.lit(code, dtype=pl.UInt8)
        expr = pl.when(condition).then(value) if expr is None else expr.when(condition).then(value)
    return pl.lit(None, dtype=pl.UInt8) if expr is None else expr.otherwise(None)


def _to_date(x: pl.Expr, fmt: str) -> pl.Expr:
    if re.search(r"%[HIMSpfTRzZ]", fmt):
        return x.str.to_datetime(fmt, strict=False).dt.date()
    return x.str.to_date(fmt, strict=False)


_AMOUNT_RX = r"^(?P<sign>[+-]?)(?P<whole>\d*)(?:{decimal}(?P<frac>\d*))?$"


def _amount_parts(x: pl.Expr, options: SourceOptions, canonical: pl.Expr | None) -> pl.Expr:
    """A struct {sign, whole, frac} of the amount's text (nulls: not a number)."""
    decimal = {".": r"\.", ",": ","}.get(options.decimal or "", "[.,]")
    text = x
    if options.thousands:
        text = text.str.replace_all(options.thousands, "", literal=True)
        if options.thousands == " ":
            text = text.str.replace_all("[\u00a0\u202f]", "")
    parts = text.str.extract_groups(_AMOUNT_RX.format(decimal=decimal))
    if canonical is not None and (options.decimal or options.thousands):
        canon = x.str.extract_groups(_AMOUNT_RX.format(decimal="[.,]"))
        parts = pl.when(canonical).then(canon).otherwise(parts)
    return parts


def _amount_value(parts: pl.Expr, *, positive: bool) -> tuple[pl.Expr, list[tuple[pl.Expr, int]]]:
    """Integer minor units in the row's currency (`__digits`), and the failing checks:
    2 not a positive number, 3 too large, 4 finer than the currency's minor unit."""
    sign = parts.struct.field("sign")
    whole = parts.struct.field("whole")
    fraction = parts.struct.field("frac").fill_null("").str.strip_chars_end("0")
    digits = pl.col("__digits")
    size = fraction.str.len_bytes().cast(pl.Int64)
    number = whole.cast(pl.Int64, strict=False)
    minor = number.fill_null(0) * pl.lit(10, dtype=pl.Int64).pow(digits) + fraction.cast(
        pl.Int64, strict=False
    ).fill_null(0) * pl.lit(10, dtype=pl.Int64).pow((digits - size).clip(0, None))
    no_digits = (whole == "") & (parts.struct.field("frac").fill_null("") == "")
    not_number = whole.is_null() | no_digits
    too_big = (number.is_null() & (whole != "")) | (number >= 10**MAX_INTEGER_DIGITS)
    sign_bad = (sign == "-") | (minor == 0) if positive else (sign == "-") & (minor != 0)
    checks = [(not_number, 2), (too_big, 3), (size > digits, 4), (sign_bad, 2)]
    return minor, checks


def _date_message(fmt: str) -> str:
    if fmt == ISO_DATE:
        return _("a date in the ISO format YYYY-MM-DD (e.g. 2024-01-31)")
    human = re.sub(r"%.", lambda m: _DATE_WORDS.get(m.group(0), m.group(0)), fmt)
    example = dt.datetime(2024, 1, 31, 13, 45, 30).strftime(fmt)
    return _("a date in the format {format} (e.g. {example})").format(format=human, example=example)


_DATE_WORDS = {
    "%Y": "YYYY", "%y": "YY", "%m": "MM", "%d": "DD", "%e": "D", "%b": "Mon", "%B": "Month",
    "%H": "hh", "%M": "mm", "%S": "ss", "%j": "DDD", "%%": "%",
}  # fmt: skip


def _static_messages() -> dict[str, str]:
    """The `expected` text of each column type whose message depends on nothing else."""
    return {
        "bool": _(BOOL_MSG),
        "currency": _(CURRENCY_MSG),
        "document_type": _(DOCUMENT_TYPE_MSG),
        "channel": _(CHANNEL_MSG),
        "rate": _(RATE_MSG),
        "siren": _(SIREN_MSG),
        "siret": _(SIRET_MSG),
        "vat": _(VAT_MSG),
        "email": _(EMAIL_MSG),
    }


def _messages(bad: pl.DataFrame, codes: dict[str, pl.Expr], ctx: _Context) -> list[RowError]:
    """RowErrors for the rows with at least one error code (a few rows: Python is fine)."""
    mapping, options = ctx.mapping, ctx.mapping.source if ctx.mapping else SourceOptions()
    hints = []
    if options.decimal:
        hints.append(_("decimal separator {separator!r}").format(separator=options.decimal))
    if options.thousands:
        hints.append(_("thousands separator {separator!r}").format(separator=options.thousands))
    hint = f" ({', '.join(hints)})" if hints else ""
    static = _static_messages()
    required = _(REQUIRED_MSG)
    amount_msg = _("{what} with at most {digits} decimals{hint}")
    positive, non_negative = _("a positive amount"), _("an amount >= 0")
    extra = [c for c in ("__digits", "__v_currency", "__v_issue_date", "__v_siren") if c in bad]
    errors: list[RowError] = []
    for column in codes:
        ctype = ctx.spec[column]
        rows = bad.filter(pl.col(f"__e_{column}").is_not_null()).select(
            "_line",
            pl.col(column).fill_null("").str.slice(0, MAX_VALUE + 1).alias("__value"),
            pl.col(f"__e_{column}").alias("__code"),
            *extra,
        )
        label = ctx.labels[column]
        for row in rows.iter_rows(named=True):
            code = row["__code"]
            if code == 1:
                expected = required
            elif ctype == "amount":
                what = positive if column == "amount" else non_negative
                expected = amount_msg.format(what=what, digits=row["__digits"], hint=hint)
                if code == 3:
                    expected += _(", below 10^{digits}").format(digits=MAX_INTEGER_DIGITS)
                elif code == 4:
                    expected += _(" (the minor unit of {currency})").format(
                        currency=row["__v_currency"] or "?"
                    )
            elif ctype == "date" and code == 3:
                expected = _("a due date on or after the issue date ({date})").format(
                    date=row["__v_issue_date"]
                )
            elif ctype == "date":
                expected = _date_message(mapping.date_format(column) if mapping else ISO_DATE)
            elif ctype == "siret" and code == 3:
                expected = _("a SIRET starting with the SIREN {siren}").format(
                    siren=row["__v_siren"]
                )
            else:
                expected = static[ctype]
            errors.append(RowError(ctx.file, row["_line"], label, _clip(row["__value"]), expected))
    return errors


# --------------------------------------------------------------------------------------
# duplicates


def _deduplicate(
    good: pl.DataFrame, frame: pl.DataFrame, ctx: _Context
) -> tuple[pl.DataFrame, list[RowError]]:
    """Keep the first row of each key; a later identical row is dropped silently, a later
    different row is an error naming the first line. Customers: rows of the same customer
    that differ only by their contact columns are kept (one contact each)."""
    key = KEYS[ctx.kind]
    if key not in good.columns or good.height == 0:
        return good, []
    repeated = good.filter(pl.col(key).is_duplicated())
    if repeated.height == 0:
        return good, []
    columns = [c for c in good.columns if c not in ("_line", key)]
    first = repeated.group_by(key, maintain_order=True).first()
    later = repeated.join(first, on=key, suffix="__first").filter(
        pl.col("_line") != pl.col("_line__first")
    )
    contacts = [c for c in columns if ctx.kind == "customers" and c.startswith("contact_")]
    differs = [pl.col(c).ne_missing(pl.col(f"{c}__first")) for c in columns if c not in contacts]
    other_contact = [pl.col(c).ne_missing(pl.col(f"{c}__first")) for c in contacts]
    later = later.with_columns(
        (pl.any_horizontal(differs) if differs else pl.lit(False)).alias("__differs"),
        (pl.any_horizontal(other_contact) if other_contact else pl.lit(False)).alias("__contact"),
    )
    raw = frame.select("_line", *[c for c in ctx.spec if c in frame.columns])
    conflicts = later.filter(pl.col("__differs")).join(raw, on="_line", suffix="__raw")
    errors: list[RowError] = []
    label = {
        "customer_id": _("customer id"),
        "invoice_number": _("invoice number"),
        "payment_id": _("payment id"),
    }[key]
    unique_msg = _(
        "a unique {label} ({label} {key!r} already on line {line} with {column} {shown})"
    )
    for row in conflicts.iter_rows(named=True):
        column = next(
            c for c in columns if c not in contacts and not _same(row[c], row[f"{c}__first"])
        )
        source = column.removesuffix("_minor")
        shown = _show(column, row[f"{column}__first"], row.get("currency__first"))
        raw_value = row.get(f"{source}__raw", row.get(source))
        if raw_value is None or source == key:
            raw_value = _show(column, row[column], row.get("currency"))
        errors.append(
            RowError(
                ctx.file, row["_line"], ctx.labels.get(source, source), _clip(str(raw_value)),
                unique_msg.format(label=label, key=row[key], line=row["_line__first"],
                                  column=source.replace("_", " "), shown=shown),
            )
        )  # fmt: skip
    dropped = later.filter(pl.col("__differs") | ~pl.col("__contact"))
    return good.join(dropped.select("_line"), on="_line", how="anti"), errors


def _same(a: Any, b: Any) -> bool:
    return a == b or (a is None and b is None)


def _show(column: str, value: Any, currency: str | None) -> str:
    if value is None:
        return _("(empty)")
    if column.endswith("_minor"):
        text = str(from_minor(value, currency or "EUR"))
        return f"{text} {currency}" if currency else text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return repr(value)
