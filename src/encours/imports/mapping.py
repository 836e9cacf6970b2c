"""Mapping files: how an ERP's CSV/XLSX export maps onto the canonical import columns.

A mapping is a small TOML file (documented with an example in `examples/mappings/README.md`)::

    kind = "invoices"                # customers | invoices | payments (optional)
    [source]
    separator = ";"                  # , ; | or "tab"; detected when absent
    encoding = "cp1252"              # utf-8 | cp1252 (| iso-8859-1 | iso-8859-15); detected
    decimal = ","                    # "." or ","; when absent: "," is read as the decimal
                                     # separator only in a value without a "."
    thousands = " "                  # stripped from amounts ("" = none)
    date_format = "%d/%m/%Y"         # strftime format of every date column (default ISO)
    sheet = "Factures"               # XLSX only (default: the first sheet)
    skip_rows = 0                    # lines (rows) to skip before the header
    [columns]                        # canonical column = source column
    invoice_number = "N° facture"
    [date_formats]                   # per canonical column, overrides source.date_format
    paid_date = "%d/%m/%Y %H:%M"
    [values.disputed]                # value maps: source value = canonical value
    Litige = true
    [constants]                      # canonical columns with a fixed value
    currency = "EUR"

`columns`, `date_formats`, `values` and `constants` name canonical columns (the columns
of `docs/formats.md`); a canonical column that is neither mapped nor constant is still read
from a source column of the same name when there is one. Source columns that no canonical
column names are ignored. Value maps and constants give *canonical* values (ISO dates,
`"."` decimals, booleans), already checked here when the mapping is loaded.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from encours.i18n import _

Kind = Literal["customers", "invoices", "payments"]
KINDS: tuple[str, ...] = ("customers", "invoices", "payments")

# Type of a canonical input column, which decides how its text is parsed and checked.
ColumnType = Literal[
    "id",  # identifier: a string, kept exactly (leading zeros)
    "text",  # free text
    "date",
    "bool",
    "amount",  # decimal amount in the row's currency -> <name>_minor (Int64)
    "currency",  # ISO 4217 code
    "document_type",  # invoice | credit_note
    "channel",  # paper | electronic
    "rate",  # decimal percentage
    "siren",
    "siret",
    "vat",
    "email",
]

# The canonical input columns of each kind, in the order of docs/formats.md.
INPUT_COLUMNS: dict[str, dict[str, ColumnType]] = {
    "customers": {
        "customer_id": "id",
        "name": "text",
        "siren": "siren",
        "siret": "siret",
        "vat_number": "vat",
        "address_line1": "text",
        "address_line2": "text",
        "postal_code": "id",
        "city": "text",
        "country": "text",
        "currency": "currency",
        "payment_terms": "text",
        "penalty_rate": "rate",
        "deposit_required": "bool",
        "retention_of_title": "bool",
        "is_consumer": "bool",
        "credit_limit": "amount",
        "segment": "text",
        "account_owner": "text",
        "collector": "text",
        "paperless_date": "date",
        "in_insolvency": "bool",
        "insolvency_date": "date",
        "insolvency_kind": "text",
        "contact_name": "text",
        "contact_role": "text",
        "contact_email": "email",
        "contact_phone": "text",
        "contact_language": "text",
    },
    "invoices": {
        "invoice_number": "id",
        "customer_id": "id",
        "customer_name": "text",
        "issue_date": "date",
        "due_date": "date",
        "amount": "amount",
        "currency": "currency",
        "paid_date": "date",
        "disputed": "bool",
        "document_type": "document_type",
        "applies_to": "id",
        "reference": "text",
        "channel": "channel",
        "paperless_date": "date",
        "country": "text",
    },
    "payments": {
        "payment_id": "id",
        "customer_id": "id",
        "date": "date",
        "amount": "amount",
        "currency": "currency",
        "invoice_number": "id",
        "method": "text",
    },
}

# Columns that must be present (as a source column or a constant) and non-empty on every row.
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name"),
    "invoices": ("invoice_number", "customer_id", "issue_date", "amount", "currency"),
    "payments": ("payment_id", "customer_id", "date", "amount", "currency"),
}

ALL_COLUMNS: dict[str, ColumnType] = {
    name: ctype for columns in INPUT_COLUMNS.values() for name, ctype in columns.items()
}

ISO_DATE = "%Y-%m-%d"

SEPARATORS: dict[str, str] = {",": ",", ";": ";", "|": "|", "\t": "\t", "tab": "\t"}
ENCODINGS: dict[str, str] = {
    "utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8",
    "cp1252": "cp1252", "windows-1252": "cp1252",
    "iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1",
    "iso-8859-15": "iso-8859-15", "latin-9": "iso-8859-15",
}  # fmt: skip

BOOL_WORDS: dict[str, bool] = {
    "true": True, "false": False, "yes": True, "no": False, "1": True, "0": False,
    "oui": True, "non": False, "y": True, "n": False, "vrai": True, "faux": False,
}  # fmt: skip

DOCUMENT_TYPES: dict[str, str] = {
    "invoice": "invoice", "facture": "invoice",
    "credit_note": "credit_note", "credit note": "credit_note", "credit-note": "credit_note",
    "creditnote": "credit_note", "avoir": "credit_note",
}  # fmt: skip

CHANNELS: dict[str, str] = {
    "paper": "paper", "papier": "paper",
    "electronic": "electronic", "électronique": "electronic", "electronique": "electronic",
}  # fmt: skip

_TOP_KEYS = ("kind", "source", "columns", "date_formats", "values", "constants")
_SOURCE_KEYS = (
    "separator", "encoding", "decimal", "thousands", "date_format", "sheet", "skip_rows",
)  # fmt: skip


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SourceOptions:
    """How to read the source file (section `[source]`); None means detected / default."""

    separator: str | None = None
    encoding: str | None = None
    decimal: str | None = None
    thousands: str = ""
    date_format: str | None = None
    sheet: str | None = None
    skip_rows: int = 0


@dataclass(frozen=True)
class Mapping:
    """A loaded, checked mapping.

    `values` and `constants` hold canonical text: ISO dates, "true"/"false", "." decimals;
    None in a value map means "empty" (null).
    """

    name: str = "<mapping>"
    kind: str | None = None
    source: SourceOptions = field(default_factory=SourceOptions)
    columns: dict[str, str] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)

    def date_format(self, column: str) -> str:
        return self.date_formats.get(column) or self.source.date_format or ISO_DATE


def load_mapping(path: Path) -> Mapping:
    """Read and check a TOML mapping file; MappingError names the file and the bad key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise MappingError(
            _("{path}: cannot read the mapping file: {error}").format(
                path=path, error=exc.strerror or exc
            )
        ) from exc
    except UnicodeDecodeError as exc:
        raise MappingError(
            _("{path}: a mapping file must be UTF-8 text").format(path=path)
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(_("{path}: invalid TOML: {error}").format(path=path, error=exc)) from exc
    return mapping_from_dict(data, name=str(path))


def mapping_from_dict(data: dict[str, Any], name: str = "<mapping>") -> Mapping:
    """Check a mapping given as the dict of its TOML document."""

    def fail(key: str, problem: str) -> MappingError:
        return MappingError(f"{name}: {key}: {problem}")

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(
                key, _("unknown key (expected one of: {keys})").format(keys=", ".join(_TOP_KEYS))
            )

    kind = data.get("kind")
    if kind is not None and kind not in KINDS:
        raise fail(
            "kind", _("got {value!r}, expected one of: {choices}").format(
                value=kind, choices=", ".join(KINDS))
        )  # fmt: skip
    known = INPUT_COLUMNS[kind] if kind else ALL_COLUMNS

    def table(key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise fail(key, _("expected a table, e.g. [{key}]").format(key=key))
        return value

    def column(section: str, canonical: str) -> ColumnType:
        if canonical not in known:
            what = _("{kind} columns").format(kind=kind) if kind else _("canonical columns")
            raise fail(
                f"{section}.{canonical}",
                _("unknown canonical column (the {what} are: {columns})").format(
                    what=what, columns=", ".join(known)
                ),
            )
        return known[canonical]

    source = _source_options(table("source"), fail)

    columns: dict[str, str] = {}
    for canonical, source_name in table("columns").items():
        column("columns", canonical)
        if not isinstance(source_name, str) or not source_name.strip():
            raise fail(f"columns.{canonical}", _("expected the source column name (a string)"))
        columns[canonical] = source_name.strip()

    date_formats: dict[str, str] = {}
    for canonical, fmt in table("date_formats").items():
        if column("date_formats", canonical) != "date":
            raise fail(f"date_formats.{canonical}", _("not a date column"))
        date_formats[canonical] = _check_date_format(fmt, f"date_formats.{canonical}", fail)

    values: dict[str, dict[str, str | None]] = {}
    for canonical, value_map in table("values").items():
        ctype = column("values", canonical)
        if not isinstance(value_map, dict):
            raise fail(
                f"values.{canonical}", _("expected a table of source value = canonical value")
            )
        values[canonical] = {
            str(src).strip(): _canonical_value(val, ctype, f"values.{canonical}.{src}", fail)
            for src, val in value_map.items()
        }

    constants: dict[str, str] = {}
    for canonical, value in table("constants").items():
        ctype = column("constants", canonical)
        if canonical in columns:
            raise fail(f"constants.{canonical}", _("also mapped in [columns]: choose one"))
        text = _canonical_value(value, ctype, f"constants.{canonical}", fail)
        if text is None:
            raise fail(f"constants.{canonical}", _("a constant cannot be empty"))
        constants[canonical] = text

    return Mapping(
        name=name,
        kind=kind,
        source=source,
        columns=columns,
        date_formats=date_formats,
        values=values,
        constants=constants,
    )


def _source_options(section: dict[str, Any], fail: Any) -> SourceOptions:
    for key in section:
        if key not in _SOURCE_KEYS:
            raise fail(
                f"source.{key}",
                _("unknown key (expected one of: {keys})").format(keys=", ".join(_SOURCE_KEYS)),
            )

    def text(key: str) -> str | None:
        value = section.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f"source.{key}", _("expected a string, got {value!r}").format(value=value))
        return value

    separator = text("separator")
    if separator is not None:
        if separator not in SEPARATORS:
            raise fail(
                "source.separator",
                _('got {value!r}, expected one of: , ; | "tab"').format(value=separator),
            )
        separator = SEPARATORS[separator]
    encoding = text("encoding")
    if encoding is not None:
        if encoding.lower() not in ENCODINGS:
            raise fail(
                "source.encoding",
                _("got {value!r}, expected utf-8 or cp1252").format(value=encoding),
            )
        encoding = ENCODINGS[encoding.lower()]
    decimal = text("decimal")
    if decimal is not None and decimal not in (".", ","):
        raise fail("source.decimal", _('got {value!r}, expected "." or ","').format(value=decimal))
    thousands = text("thousands") or ""
    if len(thousands) > 1 or thousands.isdigit() or thousands in ("+", "-"):
        raise fail(
            "source.thousands",
            _('got {value!r}, expected one character, e.g. " " or "."').format(value=thousands),
        )
    if thousands and thousands == decimal:
        raise fail("source.thousands", _("the same as the decimal separator"))
    if thousands in (".", ",") and decimal is None:
        other = "," if thousands == "." else "."
        raise fail(
            "source.thousands",
            _('with thousands = "{thousands}", set decimal = "{decimal}"').format(
                thousands=thousands, decimal=other
            ),
        )
    date_format = text("date_format")
    if date_format is not None:
        date_format = _check_date_format(date_format, "source.date_format", fail)
    sheet = text("sheet")
    skip_rows = section.get("skip_rows", 0)
    if not isinstance(skip_rows, int) or isinstance(skip_rows, bool) or skip_rows < 0:
        raise fail(
            "source.skip_rows",
            _("expected a whole number >= 0, got {value!r}").format(value=skip_rows),
        )
    return SourceOptions(separator, encoding, decimal, thousands, date_format, sheet, skip_rows)


def _check_date_format(fmt: Any, key: str, fail: Any) -> str:
    """A strftime format must round-trip a date (so it has a day, a month and a year)."""
    if not isinstance(fmt, str) or "%" not in fmt:
        raise fail(
            key, _('expected a strftime format such as "%d/%m/%Y", got {value!r}').format(value=fmt)
        )
    sample = dt.datetime(2024, 1, 31, 13, 45, 30)
    try:
        back = dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError:
        back = None
    if back is None or back.date() != sample.date():
        raise fail(
            key,
            _("{value!r} is not a date format with a day, a month and a year").format(value=fmt),
        )
    return fmt


def _canonical_value(value: Any, ctype: ColumnType, key: str, fail: Any) -> str | None:
    """Normalise a TOML value given for a canonical column to canonical text (None = empty)."""
    if isinstance(value, (dict, list)):
        raise fail(key, _("expected a single value, got {value!r}").format(value=value))
    if isinstance(value, dt.datetime):
        value = value.date()
    if ctype == "bool":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip() == "":
            return None
        if isinstance(value, str) and value.strip().lower() in BOOL_WORDS:
            return "true" if BOOL_WORDS[value.strip().lower()] else "false"
        raise fail(key, _("expected true or false, got {value!r}").format(value=value))
    if isinstance(value, bool):
        raise fail(key, _("expected a string, got {value!r}").format(value=value))
    if ctype == "date":
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str) and value.strip() == "":
            return None
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise fail(
            key,
            _("expected a date (2024-01-31, a TOML date or a string), got {value!r}").format(
                value=value
            ),
        )
    if isinstance(value, dt.date | dt.time):
        raise fail(key, _("expected a string, got a date/time {value!r}").format(value=value))
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if text == "":
        return None
    if ctype in ("amount", "rate"):
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number < 0:
            raise fail(
                key,
                _('expected a decimal number >= 0 such as "100.00", got {value!r}').format(
                    value=value
                ),
            )
        return format(number, "f")
    if ctype == "currency":
        code = text.upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise fail(
                key,
                _("expected a 3-letter ISO 4217 currency code, got {value!r}").format(value=value),
            )
        return code
    if ctype == "document_type":
        if text.lower() not in DOCUMENT_TYPES:
            raise fail(key, _("expected invoice or credit_note, got {value!r}").format(value=value))
        return DOCUMENT_TYPES[text.lower()]
    if ctype == "channel":
        if text.lower() not in CHANNELS:
            raise fail(key, _("expected paper or electronic, got {value!r}").format(value=value))
        return CHANNELS[text.lower()]
    return text
