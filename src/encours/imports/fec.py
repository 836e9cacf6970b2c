"""Parser of the French FEC (Fichier des Écritures Comptables).

The FEC is the accounting export every French company keeping computerised accounts must
hand to the tax administration (article L47 A of the Livre des procédures fiscales). Its
content is set by article A47 A-1 LPF (arrêté of 29 July 2013, abridged):

    « Les écritures comptables […] comportent au moins les informations suivantes :
    1. le code journal de l'écriture comptable (JournalCode) ;
    2. le libellé journal de l'écriture comptable (JournalLib) ;
    3. le numéro sur une séquence continue de l'écriture comptable (EcritureNum) ;
    4. la date de comptabilisation de l'écriture comptable (EcritureDate) ;
    5. le numéro de compte, dont les trois premiers caractères doivent correspondre à des
       chiffres respectant les normes du plan comptable français (CompteNum) ;
    6. le libellé de compte, conformément à la nomenclature du plan comptable français
       (CompteLib) ;
    7. le numéro de compte auxiliaire (à blanc si non utilisé) (CompAuxNum) ;
    8. le libellé de compte auxiliaire (à blanc si non utilisé) (CompAuxLib) ;
    9. la référence de la pièce justificative (PieceRef) ;
    10. la date de la pièce justificative (PieceDate) ;
    11. le libellé de l'écriture comptable (EcritureLib) ;
    12. le montant au débit (Debit) ;
    13. le montant au crédit (Credit) ;
    14. le lettrage de l'écriture comptable (à blanc si non utilisé) (EcritureLet) ;
    15. la date de lettrage (à blanc si non utilisé) (DateLet) ;
    16. la date de validation de l'écriture comptable (ValidDate) ;
    17. le montant en devise (à blanc si non utilisé) (Montantdevise) ;
    18. l'identifiant de la devise (à blanc si non utilisé) (Idevise). »

and, for the flat-file form: « les zones sont séparées par une tabulation ou par le caractère
"|" », « la première ligne du fichier contient le nom des zones », dates « AAAAMMJJ »,
amounts « sans séparateur des milliers », with a decimal comma. The standard also allows the
debit and credit to be given as one « Montant » and its « Sens » (D/C or +1/-1); this parser
accepts that variant (columns 12-13 named Montant and Sens).

What encours takes from it (see docs/formats.md):

* customers: the lines whose CompteNum starts with ``411`` (``customer_prefixes``); the
  customer code is CompAuxNum when set, else CompteNum; the name is CompAuxLib when
  CompAuxNum is set, else CompteLib (the first non-empty one, else the code);
* journals are classified by code and label (`classify_journal`): sales (VT, VE, VTE, or a
  label containing "vente(s)"/"sales"), bank (BQ*, BNK, or a label containing
  "banque"/"bank"), opening balances (AN, RAN, ANO, or a label containing "nouveau(x)"),
  others (OD, ...). ``sales_journals`` / ``bank_journals`` / ``opening_journals`` replace the
  default rule of their kind with an explicit list of codes;
* documents: on a sales journal a 411 debit is an invoice of that amount (incl. VAT), a 411
  credit a credit note; number = PieceRef, issue date = PieceDate (else EcritureDate), due
  date null (computed later from the customer's terms). The 411 lines of one entry
  (JournalCode + EcritureNum) with the same customer and PieceRef are summed (an invoice
  with several instalments). On the opening journal a 411 debit is an open invoice carried
  forward (numbered ``PieceRef``, or ``PieceRef-customer`` when the opening entry uses one
  PieceRef for several customers);
* payments: a 411 credit on any other journal (bank, opening, OD...) is a payment dated
  EcritureDate. Its id is ``JournalCode-EcritureNum-customer-k``, k being the rank of the
  line among the 411 lines of that entry and customer: unique, and stable across
  re-imports and re-exports of the same entries (it does not depend on the line number);
* a 411 debit on a non-sales, non-opening journal (a refund, a rejected direct debit, a
  reclassification) is kept as a debit document of type ``invoice`` numbered like a payment
  (``JournalCode-EcritureNum-customer-k``), so that the customer's open items still add up
  to the 411 balance; the payment or credit note it is lettered with is allocated to it;
* allocations: the lines of one customer sharing a non-empty EcritureLet (case-sensitive:
  partial letters are often lowercase) form a letter group; its payments and credit notes
  (by date, then line) are allocated to its debit documents oldest-first (by issue date,
  then number), up to min(total debits, total credits) of the group: a partial group
  allocates what matches, no document or payment is ever allocated more than its amount.
  DateLet is only validated.

Montantdevise / Idevise are validated but otherwise ignored: FEC amounts (Debit/Credit) are
always in the accounting currency (`currency`), which is the currency of every record.
Money is exact: amounts are validated as decimal strings and converted to integer minor
units with `encours.money.to_minor` (never through floats).

Every problem is a `RowError` (file, 1-based physical line, column, value, expected); a line
with an error contributes nothing to the frames, and all errors are collected.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Collection, Sequence
from pathlib import Path

import polars as pl

from encours.imports.canonical import (
    ALLOCATION_SCHEMA,
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
    RowError,
    conform,
    empty,
)
from encours.imports.encoding import EncodingError, decode_bytes
from encours.money import MoneyError, check_currency, minor_digits, to_minor

FEC_COLUMNS: tuple[str, ...] = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
    "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
    "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise",
)  # fmt: skip
# The variant allowed by A47 A-1: one amount and its direction instead of Debit / Credit.
FEC_COLUMNS_MONTANT_SENS: tuple[str, ...] = (
    FEC_COLUMNS[:11] + ("Montant", "Sens") + FEC_COLUMNS[13:]
)

SALES, BANK, OPENING, OTHER = "sales", "bank", "opening", "other"

DEFAULT_SALES_CODES = frozenset({"VT", "VE", "VTE"})
DEFAULT_BANK_CODES = frozenset({"BQ", "BQ1", "BQ2", "BNK"})
DEFAULT_OPENING_CODES = frozenset({"AN", "RAN", "ANO"})
_SALES_LABEL = re.compile(r"\b(ventes?|sales)\b", re.IGNORECASE)
_BANK_LABEL = re.compile(r"\b(banques?|banks?)\b", re.IGNORECASE)
_OPENING_LABEL = re.compile(r"\bnouveaux?\b", re.IGNORECASE)

_AMOUNT = r"^[+-]?(?:[0-9]{1,15}(?:[.,][0-9]*)?|[.,][0-9]+)$"
_SIGNED_AMOUNT_EXPECTED = "a decimal amount like 1234,56 (no thousands separator)"
_AMOUNT_EXPECTED = "a non-negative decimal amount like 1234,56 (no thousands separator)"
_DATE_EXPECTED = "a date YYYYMMDD"
_LINE = "(line)"
_HEADER = "(header)"
_FILE = "(file)"


def classify_journal(
    code: str,
    labels: Collection[str] = (),
    *,
    sales_journals: Collection[str] | None = None,
    bank_journals: Collection[str] | None = None,
    opening_journals: Collection[str] | None = None,
) -> str:
    """Kind of a journal: "sales", "bank", "opening" or "other".

    An explicit list of codes (compared case-insensitively) replaces the default rule of
    its kind; the default rules look at the code, then at the journal's labels.
    """
    key = code.strip().upper()
    explicit = (
        (SALES, sales_journals),
        (BANK, bank_journals),
        (OPENING, opening_journals),
    )
    for kind, codes in explicit:
        if codes is not None and key in {c.strip().upper() for c in codes}:
            return kind
    if opening_journals is None and (
        key in DEFAULT_OPENING_CODES or any(_OPENING_LABEL.search(lab) for lab in labels)
    ):
        return OPENING
    if sales_journals is None and (
        key in DEFAULT_SALES_CODES or any(_SALES_LABEL.search(lab) for lab in labels)
    ):
        return SALES
    if bank_journals is None and (
        key in DEFAULT_BANK_CODES
        or key.startswith("BQ")
        or any(_BANK_LABEL.search(lab) for lab in labels)
    ):
        return BANK
    return OTHER


def parse_fec(
    path: Path,
    currency: str = "EUR",
    *,
    sales_journals: Collection[str] | None = None,
    bank_journals: Collection[str] | None = None,
    opening_journals: Collection[str] | None = None,
    customer_prefixes: Sequence[str] = ("411",),
) -> CanonicalBatch:
    """Read a FEC file into customers, documents, payments and allocations (see module doc).

    `currency` is the company's accounting currency, that of every amount of the FEC.
    """
    currency = check_currency(currency)
    for name, codes in (
        ("sales_journals", sales_journals),
        ("bank_journals", bank_journals),
        ("opening_journals", opening_journals),
    ):
        if isinstance(codes, str):
            raise TypeError(f"{name} must be a collection of journal codes, not a string")
    listed = [
        {code.strip().upper() for code in codes}
        for codes in (sales_journals, bank_journals, opening_journals)
        if codes is not None
    ]
    overlap = set().union(*(a & b for i, a in enumerate(listed) for b in listed[i + 1 :]))
    if overlap:
        raise ValueError(f"journal codes listed as two kinds: {', '.join(sorted(overlap))}")
    file = str(path)
    data = Path(path).read_bytes()
    try:
        text, _encoding = decode_bytes(data, file)
    except EncodingError as exc:
        return _failed(file, [_encoding_error(file, data, exc)])
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _physical_lines(text)

    columns, sep, errors = _read_header(lines[0] if lines else "", file)
    if errors:
        return _failed(file, errors)

    frame, errors = _split_fields(lines, sep, columns, file)
    frame, more = _validate(frame, columns, file)
    errors += more
    kinds = _journal_kinds(frame, sales_journals, bank_journals, opening_journals)
    lines411, more = _customer_lines(frame, columns, kinds, currency, customer_prefixes, file)
    errors += more

    customers = _customers(lines411, currency)
    items, more = _items(lines411, customers, file)
    errors += more
    documents = _documents(items, currency)
    payments = _payments(items, currency)
    allocations = _allocations(items)

    errors.sort(key=lambda e: (e.line, _column_rank(e.column)))
    return CanonicalBatch(
        source=file,
        customers=conform(customers, CUSTOMER_SCHEMA),
        documents=conform(documents, DOCUMENT_SCHEMA),
        payments=conform(payments, PAYMENT_SCHEMA),
        allocations=conform(allocations, ALLOCATION_SCHEMA),
        errors=errors,
        # the label of the auxiliary account; the master data stay those of the customers file
        customer_fields=frozenset({"name"}),
    )


# --------------------------------------------------------------------------- reading


def _failed(file: str, errors: list[RowError]) -> CanonicalBatch:
    return CanonicalBatch(
        source=file,
        customers=empty(CUSTOMER_SCHEMA),
        documents=empty(DOCUMENT_SCHEMA),
        payments=empty(PAYMENT_SCHEMA),
        allocations=empty(ALLOCATION_SCHEMA),
        errors=errors,
    )


def _encoding_error(file: str, data: bytes, exc: EncodingError) -> RowError:
    cause = exc.__cause__
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    start = cause.start if isinstance(cause, UnicodeDecodeError) else 0
    line = body.count(b"\n", 0, start) + 1
    value = f"0x{body[start]:02x}" if start < len(body) else ""
    return RowError(file, line, _FILE, value, "UTF-8 or CP1252 text")


def _physical_lines(text: str) -> list[str]:
    """Split on the file's line ends only (not on the other characters str.splitlines uses)."""
    if "\n" in text:
        text = text.replace("\r\n", "\n")
        lines = text.split("\n")
    else:  # old Mac line ends, or a single line
        lines = text.split("\r")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _read_header(header: str, file: str) -> tuple[tuple[str, ...], str, list[RowError]]:
    """(column names, separator, errors) from the first line."""
    expected_text = "a FEC header: the 18 column names separated by '|' or a tab"
    pipes, tabs = header.count("|"), header.count("\t")
    if not pipes and not tabs:
        return FEC_COLUMNS, "|", [RowError(file, 1, _HEADER, header.strip(), expected_text)]
    sep = "|" if pipes >= tabs else "\t"
    names = [name.strip() for name in header.split(sep)]
    if len(names) > 1 and names[-1] == "":  # a trailing separator
        names.pop()
    lowered = [name.lower() for name in names]
    if "montant" in lowered and "sens" in lowered and "debit" not in lowered:
        columns = FEC_COLUMNS_MONTANT_SENS
    else:
        columns = FEC_COLUMNS
    wanted = [c.lower() for c in columns]
    if not set(lowered) & set(wanted):  # no header at all (data on line 1?)
        return columns, sep, [RowError(file, 1, _HEADER, header.strip(), expected_text)]

    errors: list[RowError] = []
    used: set[int] = set()
    for i, column in enumerate(columns):
        if column.lower() in lowered:
            continue
        actual = ""
        if i < len(names) and lowered[i] not in wanted:
            actual = names[i]
            used.add(i)
        errors.append(RowError(file, 1, column, actual, f"column {i + 1} named {column!r}"))
    for i, name in enumerate(names):
        if i in used or lowered[i] in wanted:
            continue
        missing = [c for c in columns if c.lower() not in lowered]
        close = difflib.get_close_matches(name, missing, n=1)
        hint = f" (is it {close[0]!r}?)" if close else ""
        errors.append(
            RowError(file, 1, name, name, f"only the 18 FEC columns of A47 A-1 LPF{hint}")
        )
    if not errors and lowered != wanted:
        for i, column in enumerate(columns):
            actual = names[i] if i < len(names) else ""
            if actual.lower() != column.lower():
                errors.append(RowError(file, 1, column, actual, f"column {i + 1} named {column!r}"))
    return columns, sep, errors


def _split_fields(
    lines: list[str], sep: str, columns: tuple[str, ...], file: str
) -> tuple[pl.DataFrame, list[RowError]]:
    """One row per non-blank line after the header: `_line` and the fields (stripped, "" -> null).

    A line is accepted with exactly 18 fields, or 19 when the last one is empty (a trailing
    separator); the others are reported and dropped.
    """
    n = len(columns)
    frame = (
        pl.DataFrame({"raw": lines[1:]}, schema={"raw": pl.String()})
        .with_row_index("_line", offset=2)
        .with_columns(pl.col("_line").cast(pl.Int64))
        .filter(pl.col("raw").str.strip_chars() != "")
    )
    fields = [*columns, "_extra"]
    frame = frame.with_columns(
        pl.col("raw").str.count_matches(sep, literal=True).alias("_seps"),
        pl.col("raw").str.split_exact(sep, n).struct.rename_fields(fields).alias("_fields"),
    ).unnest("_fields")
    frame = frame.with_columns(
        [_blank_to_null(pl.col(name).str.strip_chars()).alias(name) for name in fields]
    )
    good = (pl.col("_seps") == n - 1) | ((pl.col("_seps") == n) & pl.col("_extra").is_null())
    bad = frame.filter(~good)
    separator = "'|'" if sep == "|" else "a tab"
    errors = [
        RowError(file, line, _LINE, raw, f"{n} fields separated by {separator}, found {seps + 1}")
        for line, raw, seps in bad.select("_line", "raw", "_seps").iter_rows()
    ]
    return frame.filter(good).drop("raw", "_seps", "_extra"), errors


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr).otherwise(None)


# --------------------------------------------------------------------------- validation


def _is_date(name: str) -> pl.Expr:
    col = pl.col(name)
    return (
        col.str.contains(r"^[0-9]{8}$")
        & col.str.strptime(pl.Date, "%Y%m%d", strict=False).is_not_null()
    ).fill_null(False)


def _is_amount(name: str) -> pl.Expr:
    return pl.col(name).str.contains(_AMOUNT).fill_null(False)


def _is_negative(name: str) -> pl.Expr:
    col = pl.col(name)
    return (col.str.starts_with("-") & col.str.contains("[1-9]")).fill_null(False)


def _is_nonzero(name: str) -> pl.Expr:
    return pl.col(name).str.contains("[1-9]").fill_null(False)


def _to_date(name: str) -> pl.Expr:
    return pl.col(name).str.strptime(pl.Date, "%Y%m%d", strict=False)


def _validate(
    frame: pl.DataFrame, columns: tuple[str, ...], file: str
) -> tuple[pl.DataFrame, list[RowError]]:
    """Check every line's mandatory fields, dates and amounts (vectorised); drop the bad lines.

    With the Montant/Sens variant the frame gets Debit and Credit columns from them.
    """
    checks: list[tuple[str, pl.Expr, str]] = [
        (name, pl.col(name).is_null(), f"a {name} (required)")
        for name in ("JournalCode", "EcritureNum", "CompteNum")
    ]
    checks.append(("EcritureDate", ~_is_date("EcritureDate"), f"{_DATE_EXPECTED} (required)"))
    for name in ("PieceDate", "DateLet", "ValidDate"):
        checks.append((name, pl.col(name).is_not_null() & ~_is_date(name), _DATE_EXPECTED))
    montant_sens = "Montant" in columns
    amounts = ("Montant",) if montant_sens else ("Debit", "Credit")
    for name in amounts:
        ok = pl.col(name).is_null() | (_is_amount(name) & ~_is_negative(name))
        checks.append((name, ~ok, _AMOUNT_EXPECTED))
    if montant_sens:
        sens = pl.col("Sens").str.to_uppercase().str.replace(r"^\+", "")
        checks.append(
            ("Sens", ~sens.is_in(["D", "C", "1", "-1"]).fill_null(False), "D, C, +1 or -1")
        )
    else:
        both = _is_amount("Debit") & _is_amount("Credit") & _is_nonzero("Debit")
        checks.append(
            (
                "Credit",
                both & _is_nonzero("Credit"),
                "an empty or zero Credit on a line with a Debit (one of Debit/Credit only)",
            )
        )
    checks.append(
        (
            "Montantdevise",
            pl.col("Montantdevise").is_not_null() & ~_is_amount("Montantdevise"),
            _SIGNED_AMOUNT_EXPECTED,
        )
    )
    checks.append(
        (
            "Idevise",
            pl.col("Idevise").is_not_null()
            & ~pl.col("Idevise").str.contains(r"^[A-Za-z]{3}$").fill_null(False),
            "a currency code of 3 letters (ISO 4217)",
        )
    )
    frame, errors = _apply_checks(frame, checks, file)
    if montant_sens:
        sens = pl.col("Sens").str.to_uppercase().str.replace(r"^\+", "")
        frame = frame.with_columns(
            pl.when(sens.is_in(["D", "1"])).then(pl.col("Montant")).alias("Debit"),
            pl.when(sens.is_in(["C", "-1"])).then(pl.col("Montant")).alias("Credit"),
        )
    return frame, errors


def _apply_checks(
    frame: pl.DataFrame, checks: list[tuple[str, pl.Expr, str]], file: str
) -> tuple[pl.DataFrame, list[RowError]]:
    """Evaluate (column, is-bad expression, expected) checks; return the good rows and errors."""
    if not checks:
        return frame, []
    flags = frame.select(
        pl.col("_line"),
        *[expr.fill_null(False).alias(f"_bad{i}") for i, (_, expr, _) in enumerate(checks)],
    )
    errors: list[RowError] = []
    for i, (column, _expr, expected) in enumerate(checks):
        mask = flags.get_column(f"_bad{i}")
        if not mask.any():
            continue
        value_column = column if column in frame.columns else "_line"
        bad = frame.filter(mask).select("_line", value_column)
        for line, value in bad.iter_rows():
            shown = "" if value is None or value_column == "_line" else str(value)
            errors.append(RowError(file, line, column, shown, expected))
    any_bad = pl.any_horizontal([pl.col(f"_bad{i}") for i in range(len(checks))])
    return frame.filter(~flags.select(any_bad).to_series()), errors


def _journal_kinds(
    frame: pl.DataFrame,
    sales_journals: Collection[str] | None,
    bank_journals: Collection[str] | None,
    opening_journals: Collection[str] | None,
) -> dict[str, str]:
    journals = (
        frame.group_by("JournalCode").agg(pl.col("JournalLib").drop_nulls().unique()).iter_rows()
    )
    return {
        code: classify_journal(
            code,
            labels,
            sales_journals=sales_journals,
            bank_journals=bank_journals,
            opening_journals=opening_journals,
        )
        for code, labels in journals
    }


def _minor_amounts(values: pl.Series, currency: str) -> pl.Series:
    """Validated amount strings (decimal comma or dot, null = 0) -> Int64 minor units.

    Each distinct value goes through `to_minor` once; a value with more decimals than the
    currency allows becomes null.
    """
    normalized = values.fill_null("0").str.replace(",", ".", literal=True)
    mapping: dict[str, int] = {}
    for value in normalized.unique().to_list():
        with contextlib.suppress(MoneyError):
            mapping[value] = to_minor(value, currency)
    return normalized.replace_strict(mapping, default=None, return_dtype=pl.Int64)


def _customer_lines(
    frame: pl.DataFrame,
    columns: tuple[str, ...],
    kinds: dict[str, str],
    currency: str,
    prefixes: Sequence[str],
    file: str,
) -> tuple[pl.DataFrame, list[RowError]]:
    """The valid customer-account lines, typed: one row per line with a non-zero amount or not."""
    is_customer = pl.any_horizontal([pl.col("CompteNum").str.starts_with(p) for p in prefixes])
    lines = frame.filter(is_customer)
    lines = lines.with_columns(
        pl.col("JournalCode").replace_strict(kinds, default=OTHER).alias("kind"),
        _minor_amounts(lines.get_column("Debit"), currency).alias("debit"),
        _minor_amounts(lines.get_column("Credit"), currency).alias("credit"),
    )
    montant_sens = "Montant" in columns
    digits = minor_digits(currency)
    too_fine = f"an amount with at most {digits} decimals ({currency})"
    is_document = (pl.col("kind") == SALES) | ((pl.col("kind") == OPENING) & (pl.col("debit") > 0))
    checks = [
        ("Montant" if montant_sens else "Debit", pl.col("debit").is_null(), too_fine),
        ("Montant" if montant_sens else "Credit", pl.col("credit").is_null(), too_fine),
        (
            "PieceRef",
            is_document
            & ((pl.col("debit") > 0) | (pl.col("credit") > 0))
            & pl.col("PieceRef").is_null(),
            "a PieceRef: the number of the invoice or credit note",
        ),
    ]
    lines, errors = _apply_checks(lines, checks, file)
    has_aux = pl.col("CompAuxNum").is_not_null()
    lines = lines.select(
        "_line",
        pl.col("JournalCode").alias("journal"),
        pl.col("EcritureNum").alias("entry"),
        "kind",
        pl.when(has_aux)
        .then(pl.col("CompAuxNum"))
        .otherwise(pl.col("CompteNum"))
        .alias("customer_id"),
        pl.when(has_aux)
        .then(pl.col("CompAuxLib"))
        .otherwise(pl.col("CompteLib"))
        .alias("line_name"),
        pl.col("PieceRef").alias("piece_ref"),
        pl.coalesce(_to_date("PieceDate"), _to_date("EcritureDate")).alias("issue_date"),
        _to_date("EcritureDate").alias("entry_date"),
        "debit",
        "credit",
        pl.col("EcritureLet").alias("letter"),
    )
    return lines, errors


# --------------------------------------------------------------------------- records


def _customers(lines: pl.DataFrame, currency: str) -> pl.DataFrame:
    return (
        lines.group_by("customer_id")
        .agg(pl.col("_line").min(), pl.col("line_name").drop_nulls().first().alias("name"))
        .with_columns(
            pl.col("name").fill_null(pl.col("customer_id")),
            pl.lit(currency).alias("currency"),
        )
        .sort("_line")
    )


def _items(
    lines: pl.DataFrame, customers: pl.DataFrame, file: str
) -> tuple[pl.DataFrame, list[RowError]]:
    """Give every 411 line with an amount its role and the key of the record it belongs to.

    role: invoice | credit_note (documents, key = number) | payment (key = payment id).
    Lines of documents whose number is already used by another document are reported and
    dropped (with all the lines of that document).
    """
    rank = pl.col("_line").rank("ordinal").over("journal", "entry", "customer_id")
    synthetic = pl.concat_str(
        [pl.col("journal"), pl.col("entry"), pl.col("customer_id"), rank.cast(pl.String)],
        separator="-",
    )
    debit, credit, kind = pl.col("debit") > 0, pl.col("credit") > 0, pl.col("kind")
    items = lines.filter(debit | credit).with_columns(
        pl.when(debit)
        .then(pl.lit("invoice"))
        .when(kind == SALES)
        .then(pl.lit("credit_note"))
        .otherwise(pl.lit("payment"))
        .alias("role"),
        pl.when(debit).then(pl.col("debit")).otherwise(pl.col("credit")).alias("amount"),
        synthetic.alias("synthetic"),
    )
    # An opening entry may use one PieceRef for the balances of several customers.
    opening_doc = (kind == OPENING) & (pl.col("role") == "invoice")
    shared = pl.col("customer_id").n_unique().over(opening_doc, "piece_ref") > 1
    items = items.with_columns(
        pl.when(kind == SALES)
        .then(pl.col("piece_ref"))
        .when(opening_doc & shared)
        .then(pl.concat_str([pl.col("piece_ref"), pl.col("customer_id")], separator="-"))
        .when(opening_doc)
        .then(pl.col("piece_ref"))
        .otherwise(pl.col("synthetic"))
        .alias("key")
    ).join(customers.select("customer_id", pl.col("name").alias("customer_name")), "customer_id")

    # One document per (entry, customer, number, type); its first line is its line.
    doc_key = ["journal", "entry", "customer_id", "key", "role"]
    items = items.with_columns(
        pl.col("_line").min().over(doc_key).alias("doc_line"),
        pl.col("issue_date").sort_by("_line").first().over(doc_key),
    )
    is_doc = pl.col("role") != "payment"
    first_use = pl.col("doc_line").min().over(is_doc, "key")
    items = items.with_columns(first_use.alias("first_use"))
    duplicates = items.filter(pl.col("doc_line") != pl.col("first_use")).unique(
        "doc_line", keep="first"
    )
    errors = [
        RowError(
            file,
            line,
            "PieceRef",
            key,
            f"a document number used once (already used by the document on line {first})",
        )
        for line, key, first in duplicates.sort("doc_line")
        .select("doc_line", "key", "first_use")
        .iter_rows()
    ]
    items = items.filter(pl.col("doc_line") == pl.col("first_use")).drop("first_use")
    return items.sort("_line"), errors


def _documents(items: pl.DataFrame, currency: str) -> pl.DataFrame:
    return (
        items.filter(pl.col("role") != "payment")
        .group_by("key", maintain_order=True)
        .agg(
            pl.col("doc_line").first().alias("_line"),
            pl.col("role").first().alias("document_type"),
            pl.col("customer_id").first(),
            pl.col("customer_name").first(),
            pl.col("issue_date").first(),
            pl.col("amount").sum().alias("amount_minor"),
        )
        .rename({"key": "invoice_number"})
        .with_columns(pl.lit(currency).alias("currency"))
        .sort("_line")
    )


def _payments(items: pl.DataFrame, currency: str) -> pl.DataFrame:
    return items.filter(pl.col("role") == "payment").select(
        "_line",
        pl.col("key").alias("payment_id"),
        "customer_id",
        pl.col("entry_date").alias("date"),
        pl.col("amount").alias("amount_minor"),
        pl.lit(currency).alias("currency"),
    )


def _allocations(items: pl.DataFrame) -> pl.DataFrame:
    """Match the debits and credits of each letter group oldest-first (vectorised).

    Within a group, each side is laid end to end on one number line: a debit document covers
    [start, end) of the group's debits (in issue date / number order), a credit
    [start, end) of its credits (payments and credit notes by date / line). The matched
    part is [0, min(total debits, total credits)); cutting it at every end of either side
    gives segments that each lie in exactly one debit and one credit: their lengths, summed
    per (debit, credit) pair, are the allocations. Groups are placed one after the other
    on a single global line so that two as-of joins do the whole file.
    """
    lettered = items.filter(pl.col("letter").is_not_null())
    group = ["customer_id", "letter"]
    debits = (
        lettered.filter(pl.col("role") == "invoice")
        .group_by([*group, "key"])
        .agg(pl.col("amount").sum(), pl.col("issue_date").first())
        .select(*group, pl.col("key").alias("invoice_number"), "amount", "issue_date")
    )
    credits = (
        lettered.filter(pl.col("role") == "credit_note")
        .group_by([*group, "key"])
        .agg(pl.col("amount").sum(), pl.col("issue_date").first(), pl.col("_line").min())
        .select(
            *group,
            pl.lit(None, pl.String).alias("payment_id"),
            pl.col("key").alias("credit_note_number"),
            "amount",
            pl.col("issue_date").alias("date"),
            "_line",
        )
    )
    payments = lettered.filter(pl.col("role") == "payment").select(
        *group,
        pl.col("key").alias("payment_id"),
        pl.lit(None, pl.String).alias("credit_note_number"),
        "amount",
        pl.col("entry_date").alias("date"),
        "_line",
    )
    credits = pl.concat([credits, payments])
    if debits.is_empty() or credits.is_empty():
        return empty(ALLOCATION_SCHEMA)

    totals = (
        debits.group_by(group)
        .agg(pl.col("amount").sum().alias("total_debit"))
        .join(credits.group_by(group).agg(pl.col("amount").sum().alias("total_credit")), on=group)
        .sort(group)
        .with_columns(
            pl.max_horizontal("total_debit", "total_credit").cum_sum().alias("_next"),
            pl.min_horizontal("total_debit", "total_credit").alias("matched"),
        )
        .with_columns(
            (pl.col("_next") - pl.max_horizontal("total_debit", "total_credit")).alias("offset")
        )
        .with_columns((pl.col("offset") + pl.col("matched")).alias("limit"))
        .select(*group, "offset", "limit")
    )

    def lay_out(side: pl.DataFrame, order: list[str]) -> pl.DataFrame:
        return (
            side.join(totals, on=group)
            .sort(["offset", *order])
            .with_columns((pl.col("offset") + pl.col("amount").cum_sum().over(group)).alias("end"))
        )

    debits = lay_out(debits, ["issue_date", "invoice_number"])
    credits = lay_out(credits, ["date", "_line"])
    cuts = (
        pl.concat(
            [
                debits.select(*group, "offset", "limit", "end"),
                credits.select(*group, "offset", "limit", "end"),
            ]
        )
        .filter(pl.col("end") <= pl.col("limit"))
        .unique(["end"])
        .sort("end")
        .with_columns(pl.col("end").shift(1).over(group).fill_null(pl.col("offset")).alias("start"))
        .with_columns((pl.col("end") - pl.col("start")).alias("amount_minor"))
        .filter(pl.col("amount_minor") > 0)
        .select("end", "amount_minor")
    )
    pairs = cuts.join_asof(
        debits.select(pl.col("end").alias("debit_end"), "invoice_number").sort("debit_end"),
        left_on="end",
        right_on="debit_end",
        strategy="forward",
    ).join_asof(
        credits.select(
            pl.col("end").alias("credit_end"), "payment_id", "credit_note_number", "_line"
        ).sort("credit_end"),
        left_on="end",
        right_on="credit_end",
        strategy="forward",
    )
    return (
        pairs.group_by(["_line", "invoice_number", "payment_id", "credit_note_number"])
        .agg(pl.col("amount_minor").sum(), pl.col("end").min())
        .sort(["_line", "end"])
        .drop("end")
    )


_COLUMN_ORDER = {name: i for i, name in enumerate(FEC_COLUMNS + ("Montant", "Sens"))}


def _column_rank(column: str) -> int:
    """Errors of one line are sorted in the order of the columns (whole-line errors first)."""
    return _COLUMN_ORDER.get(column, -1)
