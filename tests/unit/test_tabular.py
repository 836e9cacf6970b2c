"""CSV / XLSX exports -> CanonicalBatch: exact values, and every bad value as a RowError."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.eu import vat as stdnum_vat
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

from encours.imports.canonical import (
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
    RowError,
)
from encours.imports.mapping import Mapping, MappingError, SourceOptions, load_mapping
from encours.imports.tabular import FILE, ROW, parse_table
from encours.money import minor_digits

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tabular"
IBM_MAPPING = ROOT / "examples" / "mappings" / "ibm-ar.toml"
D = dt.date


def located(batch: CanonicalBatch) -> list[tuple[int, str, str]]:
    return [(e.line, e.column, e.value) for e in batch.errors]


def write(tmp_path: Path, text: str, name: str = "file.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


INVOICE_HEADER = "invoice_number,customer_id,issue_date,amount,currency\n"


# --------------------------------------------------------------------------------------
# canonical files


def test_canonical_invoices_exact_values() -> None:
    batch = parse_table(FIXTURES / "invoices-canonical.csv", "invoices")
    assert batch.errors == []
    assert batch.customers is None and batch.payments is None
    frame = batch.documents
    assert frame.schema == pl.Schema(DOCUMENT_SCHEMA)
    rows = frame.to_dicts()
    assert rows[0] == {
        "_line": 2,
        "invoice_number": "0000611365",
        "document_type": "invoice",
        "customer_id": "C001",
        "customer_name": "Dupont SA",
        "issue_date": D(2024, 1, 15),
        "due_date": D(2024, 2, 14),
        "amount_minor": 123456,
        "currency": "EUR",
        "paid_date": D(2024, 2, 20),
        "disputed": False,
        "applies_to": None,
        "reference": "PO-4512",
        "channel": "paper",
        "paperless_date": None,
        "country": None,
    }
    assert rows[1]["customer_name"] == "Martin & Fils, SARL"  # quoted separator
    assert rows[1]["due_date"] is None and rows[1]["disputed"] is True
    assert rows[1]["amount_minor"] == 9990
    assert rows[2]["document_type"] == "credit_note"
    assert rows[2]["applies_to"] == "0000611365"
    assert rows[2]["disputed"] is None
    assert (rows[3]["amount_minor"], rows[3]["currency"]) == (150000, "JPY")  # no minor unit
    assert (rows[4]["amount_minor"], rows[4]["currency"]) == (12345, "KWD")  # "12,345": 3 decimals
    assert frame["_line"].to_list() == [2, 3, 4, 5, 6]


def test_canonical_payments_exact_values() -> None:
    batch = parse_table(FIXTURES / "payments-canonical.csv", "payments")
    assert batch.errors == []
    assert batch.payments.schema == pl.Schema(PAYMENT_SCHEMA)
    assert batch.payments.rows() == [
        (2, "VIR-0001", "C001", D(2024, 2, 20), 100000, "EUR", "0000611365", "transfer"),
        (3, "VIR-0002", "C001", D(2024, 2, 21), 56, "EUR", None, "cheque"),
        (4, "CB-3", "C002", D(2024, 3, 1), 9990, "EUR", "F-2024-002", "card"),
    ]


def test_canonical_customers_exact_values() -> None:
    batch = parse_table(FIXTURES / "customers-canonical.csv", "customers", default_currency="EUR")
    assert batch.errors == []
    frame = batch.customers
    assert frame.schema == pl.Schema(CUSTOMER_SCHEMA)
    first = frame.row(0, named=True)
    assert first["siren"] == "732829320"  # spaces removed
    assert first["siret"] == "73282932000074"
    assert first["vat_number"] == "FR44732829320"
    assert first["penalty_rate"] == "10.5"
    assert (first["deposit_required"], first["retention_of_title"], first["is_consumer"]) == (
        False,
        True,
        False,
    )
    assert first["credit_limit_minor"] == 5000000
    assert first["contact_email"] == "compta@dupont.example"
    assert first["contact_phone"] == "+33 1 23 45 67 89"
    second = frame.row(1, named=True)
    assert second["currency"] == "EUR"  # default_currency
    assert second["payment_terms"] == "45 jours fin de mois"
    assert second["credit_limit_minor"] is None
    third = frame.row(2, named=True)
    assert (third["currency"], third["credit_limit_minor"], third["is_consumer"]) == (
        "JPY",
        2000000,
        False,
    )
    la_poste = frame.row(3, named=True)  # La Poste SIRET: no Luhn, digit sum multiple of 5
    assert la_poste["siret"] == "35600000049837"
    assert la_poste["credit_limit_minor"] == 0


def test_customers_default_currency_is_used_for_empty_currency() -> None:
    batch = parse_table(FIXTURES / "customers-canonical.csv", "customers", default_currency="CHF")
    assert batch.customers["currency"].to_list() == ["EUR", "CHF", "JPY", "EUR"]
    with pytest.raises(ValueError, match="default_currency"):
        parse_table(FIXTURES / "customers-canonical.csv", "customers", default_currency="EU")


SAME_THREE = [
    (2, "F-001", "C001", "Société Générale", D(2024, 1, 5), D(2024, 2, 4), 123456, False),
    (3, "F-002", "C002", "Crédit Agricole", D(2024, 1, 6), None, 1200000, True),
    (4, "F-003", "C003", "Zoé & Cie", D(2024, 1, 31), D(2024, 3, 1), 9990, None),
]
SAME_COLUMNS = [
    "_line",
    "invoice_number",
    "customer_id",
    "customer_name",
    "issue_date",
    "due_date",
    "amount_minor",
    "disputed",
]


@pytest.mark.parametrize(
    "name",
    ["invoices-cp1252-semicolon.csv", "invoices-utf8-bom.csv", "invoices-tab.tsv"],
)
def test_encodings_and_separators(name: str) -> None:
    """CP1252 + ';' + decimal comma + CRLF, UTF-8 with BOM, tab separator."""
    batch = parse_table(FIXTURES / name, "invoices")
    assert batch.errors == []
    assert batch.documents.select(SAME_COLUMNS).rows() == SAME_THREE


# --------------------------------------------------------------------------------------
# the IBM sample with examples/mappings/ibm-ar.toml


def test_ibm_sample_with_the_example_mapping(ibm_sample: Path) -> None:
    batch = parse_table(ibm_sample, "invoices", load_mapping(IBM_MAPPING))
    assert batch.errors == []
    frame = batch.documents
    assert frame.height == 1930
    with ibm_sample.open(newline="") as handle:
        source = list(csv.DictReader(handle))
    assert len(source) == 1930

    first = frame.row(0, named=True)
    assert first["invoice_number"] == "0000611365"  # leading zeros kept
    assert first["customer_id"] == "0379-NEVHP"
    assert first["country"] == "391"
    assert first["issue_date"] == D(2013, 1, 2)  # "1/2/2013": M/D/YYYY without zero padding
    assert first["due_date"] == D(2013, 2, 1)
    assert first["paid_date"] == D(2013, 1, 15)
    assert first["paperless_date"] == D(2013, 4, 6)
    assert first["amount_minor"] == 5594
    assert (first["currency"], first["disputed"], first["channel"]) == ("USD", False, "paper")
    assert first["customer_name"] is None

    assert frame["invoice_number"].to_list() == [row["invoiceNumber"] for row in source]
    assert frame["amount_minor"].sum() == sum(Decimal(r["InvoiceAmount"]) for r in source) * 100
    assert frame["amount_minor"].to_list() == [
        int(Decimal(r["InvoiceAmount"]) * 100) for r in source
    ]
    settled = [bool(r["SettledDate"]) for r in source]
    assert frame["paid_date"].is_not_null().to_list() == settled
    assert frame["disputed"].to_list() == [r["Disputed"] == "Yes" for r in source]
    assert frame["channel"].to_list() == [r["PaperlessBill"].lower() for r in source]
    assert frame["document_type"].unique().to_list() == ["invoice"]
    assert frame["_line"].to_list() == list(range(2, 1932))
    assert frame.schema == pl.Schema(DOCUMENT_SCHEMA)


def test_mapping_kind_must_match(ibm_sample: Path) -> None:
    with pytest.raises(MappingError, match="kind = 'invoices', but importing payments"):
        parse_table(ibm_sample, "payments", load_mapping(IBM_MAPPING))


# --------------------------------------------------------------------------------------
# a mapped French ERP export


def test_mapped_cp1252_export_with_value_maps_and_constants() -> None:
    mapping = load_mapping(FIXTURES / "erp-fr.toml")
    batch = parse_table(FIXTURES / "invoices-erp-fr-cp1252.csv", "invoices", mapping)
    assert batch.errors == []
    rows = batch.documents.select(
        "_line",
        "invoice_number",
        "document_type",
        "customer_name",
        "due_date",
        "amount_minor",
        "currency",
        "paid_date",
        "disputed",
    ).rows()
    assert rows == [
        (3, "FA-000123", "invoice", "Société Générale", D(2024, 2, 4), 123456, "EUR",
         D(2024, 2, 10), False),
        (4, "FA-000124", "invoice", "Crédit Agricole", None, 1200000, "EUR", None, True),
        (5, "AV-000007", "credit_note", "Société Générale", None, 23456, "EUR", None, None),
        (6, "FA-000125", "invoice", "Zoé & Cie", D(2024, 3, 1), 9990, "EUR", None, False),
    ]  # fmt: skip


def test_mapped_errors_name_the_source_column(tmp_path: Path) -> None:
    mapping = load_mapping(FIXTURES / "erp-fr.toml")
    text = (
        "Export\n"
        "N° facture;Code client;Raison sociale;Date facture;Échéance;Montant TTC;Litige;Type\n"
        "FA-1;411A;A;2024-01-05;;12.50;-;FA\n"
        "FA-2;411A;A;05/01/2024;;1.234,5;Peut-être;BL\n"
    )
    path = write(tmp_path, text, encoding="cp1252")
    batch = parse_table(path, "invoices", mapping)
    assert located(batch) == [
        (2, "paid_date (Réglée le)", ""),
        (3, "issue_date (Date facture)", "2024-01-05"),
        (3, "amount (Montant TTC)", "12.50"),
        (4, "amount (Montant TTC)", "1.234,5"),
        (4, "disputed (Litige)", "Peut-être"),
        (4, "document_type (Type)", "BL"),
    ]
    header, date, amount = batch.errors[0], batch.errors[1], batch.errors[2]
    assert header.expected.startswith("a column named 'Réglée le' (mapped to paid_date by ")
    assert date.expected == "a date in the format DD/MM/YYYY (e.g. 31/01/2024)"
    assert amount.expected == (
        "a positive amount with at most 2 decimals (decimal separator ',', thousands separator ' ')"
    )
    assert batch.documents.height == 0  # no row without error


def test_constants_provide_required_columns_and_unmapped_columns_are_ignored(
    tmp_path: Path,
) -> None:
    text = "Facture,Client,Date,Montant,Remarque\n0042,C1,2024-03-01,10.5,x\n"
    mapping = Mapping(
        columns={
            "invoice_number": "Facture",
            "customer_id": "Client",
            "issue_date": "Date",
            "amount": "Montant",
        },
        constants={"currency": "JPY"},
    )
    batch = parse_table(write(tmp_path, text), "invoices", mapping)
    assert located(batch) == [(2, "amount (Montant)", "10.5")]
    assert batch.errors[0].expected == (
        "a positive amount with at most 0 decimals (the minor unit of JPY)"
    )
    mapping = Mapping(columns=mapping.columns, constants={"currency": "USD"})
    batch = parse_table(write(tmp_path, text), "invoices", mapping)
    assert batch.errors == []
    assert batch.documents.select("invoice_number", "amount_minor", "currency").rows() == [
        ("0042", 1050, "USD")
    ]


def test_skip_rows_keeps_physical_line_numbers(tmp_path: Path) -> None:
    text = "Report\n\n" + INVOICE_HEADER + "F1,C1,2024-01-01,1,EUR\n\nF2,C1,2024-13-01,1,EUR\n"
    batch = parse_table(
        write(tmp_path, text), "invoices", Mapping(source=SourceOptions(skip_rows=2))
    )
    assert located(batch) == [(6, "issue_date", "2024-13-01")]
    assert batch.documents["_line"].to_list() == [4]


# --------------------------------------------------------------------------------------
# bad files


def test_every_bad_value_is_reported_with_line_and_column() -> None:
    batch = parse_table(FIXTURES / "invoices-bad.csv", "invoices")
    assert located(batch) == [
        (3, "issue_date", "15/01/2024"),
        (4, "amount", "-5"),
        (5, "amount", "0"),
        (6, "amount", "abc"),
        (7, "amount", "12.345"),
        (8, "amount", "1200.5"),
        (9, "currency", "EURO"),
        (10, "disputed", "maybe"),
        (11, "document_type", "receipt"),
        (12, "invoice_number", ""),
        (13, "due_date", "2024-01-14"),
        (14, ROW, "F13,C1,Dupont SA,2024-01-15"),
        (15, "amount", "120.00"),
        (21, ROW, "F19,C1,Dupont SA,2024-01-15,2024-02-14,10,EUR,,no,invoice,x"),
        (23, ROW, 'F21,C1,"ab"c,2024-01-15,2024-02-14,10,EUR,,no,invoice'),
        (26, "issue_date", "1/2/2024"),
        (27, "customer_id", ""),
        (27, "issue_date", "2024-02-30"),
        (27, "amount", ""),
        (27, "currency", ""),
    ]
    expected = {(e.line, e.column): e.expected for e in batch.errors}
    iso = "a date in the ISO format YYYY-MM-DD (e.g. 2024-01-31)"
    assert expected[3, "issue_date"] == iso
    assert expected[4, "amount"] == "a positive amount with at most 2 decimals"
    assert expected[5, "amount"] == "a positive amount with at most 2 decimals"
    assert expected[6, "amount"] == "a positive amount with at most 2 decimals"
    assert expected[7, "amount"] == (
        "a positive amount with at most 2 decimals (the minor unit of EUR)"
    )
    assert expected[8, "amount"] == (
        "a positive amount with at most 0 decimals (the minor unit of JPY)"
    )
    assert expected[9, "currency"] == "a 3-letter ISO 4217 currency code such as EUR"
    assert expected[10, "disputed"] == "a boolean: true/false, yes/no, 1/0, oui/non"
    assert expected[11, "document_type"] == "invoice or credit_note"
    assert expected[12, "invoice_number"] == "a value (this column is required)"
    assert expected[13, "due_date"] == "a due date on or after the issue date (2024-01-15)"
    assert expected[14, ROW] == "10 fields separated by ',' as in the header (line 1), got 4"
    assert expected[15, "amount"] == (
        "a unique invoice number (invoice number 'F1' already on line 2 with amount 100.00 EUR)"
    )
    assert expected[21, ROW].endswith("got 11")
    assert expected[23, ROW].startswith("well-formed quotes")
    assert expected[26, "issue_date"] == iso
    assert expected[27, "issue_date"] == iso
    assert str(batch.errors[0]) == (
        f"{FIXTURES / 'invoices-bad.csv'}:3: column 'issue_date': got '15/01/2024', expected {iso}"
    )
    rows = batch.documents.select("_line", "invoice_number", "customer_name", "amount_minor")
    assert rows.rows() == [
        (2, "F1", "Dupont SA", 10000),  # line 16 repeats it identically ("100.0"): dropped
        (17, "F16", "Dupont, SA", 123450),
        (18, "F17", 'Dupont "le grand"\nSA', 1000),  # a quoted line break: lines 18-19
        (20, "F18", "Dupont SA", 1000),  # two empty trailing fields: accepted
        (22, "F20", '12" screen', 1000),  # a stray quote inside a field is a character
    ]


def test_customer_checks() -> None:
    batch = parse_table(FIXTURES / "customers-bad.csv", "customers")
    assert located(batch) == [
        (2, "siren", "732829321"),
        (3, "credit_limit", "-500"),
        (4, "name", ""),
        (4, "vat_number", "FR00732829320"),
        (4, "penalty_rate", "dix"),
        (4, "deposit_required", "peut-être"),
        (4, "contact_email", "not-an-email"),
        (5, "siret", "55210055400013"),
        (5, "currency", "XYZ"),
        (6, "siren", "732829321"),
        (7, "credit_limit", "10.005"),
    ]
    expected = {(e.line, e.column): e.expected for e in batch.errors}
    assert expected[3, "credit_limit"] == "an amount >= 0 with at most 2 decimals"
    assert expected[5, "siret"] == "a SIRET starting with the SIREN 732829320"
    assert batch.customers.select("_line", "customer_id", "name").rows() == [
        (8, "C005", "Petit SARL")
    ]


def test_duplicates_identical_dropped_different_reported(tmp_path: Path) -> None:
    text = (
        "payment_id,customer_id,date,amount,currency,method\n"
        "P1,C1,2024-01-01,10.00,EUR,transfer\n"
        "P2,C1,2024-01-01,5,EUR,\n"
        "P1,C1,2024-01-01,10,EUR,transfer\n"
        "P1,C1,2024-01-02,10,EUR,transfer\n"
        "P2,C1,2024-01-01,5,EUR,cheque\n"
    )
    batch = parse_table(write(tmp_path, text), "payments")
    assert located(batch) == [(5, "date", "2024-01-02"), (6, "method", "cheque")]
    assert batch.errors[0].expected == (
        "a unique payment id (payment id 'P1' already on line 2 with date 2024-01-01)"
    )
    assert batch.errors[1].expected == (
        "a unique payment id (payment id 'P2' already on line 3 with method (empty))"
    )
    assert batch.payments["_line"].to_list() == [2, 3]


def test_missing_required_columns() -> None:
    batch = parse_table(FIXTURES / "invoices-missing-columns.csv", "invoices")
    assert located(batch) == [(1, "customer_id", ""), (1, "amount", ""), (1, "currency", "")]
    assert [e.expected for e in batch.errors] == [
        "a column named 'customer_id'",
        "a column named 'amount'",
        "a column named 'currency'",
    ]
    assert batch.documents.height == 0
    assert batch.documents.schema == pl.Schema(DOCUMENT_SCHEMA)


def test_header_names_are_matched_case_insensitively_and_duplicates_reported(
    tmp_path: Path,
) -> None:
    text = (
        "Invoice_Number,CUSTOMER_ID,issue_date,amount,currency,currency\n"
        "F1,C1,2024-01-01,1,EUR,EUR\n"
    )
    batch = parse_table(write(tmp_path, text), "invoices")
    assert located(batch) == [(1, "currency", "currency")]
    assert batch.errors[0].expected == "a single column named 'currency' (it appears 2 times)"
    assert batch.documents.height == 0


@pytest.mark.parametrize(
    ("content", "line", "value"),
    [
        (b"", 1, ""),
        (b"\n\n  \n", 1, ""),
        (INVOICE_HEADER.encode(), 1, INVOICE_HEADER.strip()),
        (INVOICE_HEADER.encode() + b"\n,,,,\n", 1, INVOICE_HEADER.strip()),
    ],
)
def test_empty_files(tmp_path: Path, content: bytes, line: int, value: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    batch = parse_table(path, "invoices")
    assert [(e.line, e.column, e.value, e.expected) for e in batch.errors] == [
        (line, FILE, value, "a header line and at least one row")
    ]
    assert batch.documents.height == 0
    assert batch.documents.schema == pl.Schema(DOCUMENT_SCHEMA)


def test_header_only_fixture() -> None:
    batch = parse_table(FIXTURES / "header-only.csv", "invoices")
    assert [(e.line, e.column) for e in batch.errors] == [(1, FILE)]


def test_bad_encoding_is_a_row_error_with_its_line() -> None:
    batch = parse_table(FIXTURES / "invoices-bad-encoding.csv", "invoices")
    assert [(e.line, e.column, e.value) for e in batch.errors] == [(3, FILE, "byte 0x81")]
    assert "UTF-8 or CP1252" in batch.errors[0].expected
    assert batch.documents.height == 0


def test_declared_encoding_is_enforced(tmp_path: Path) -> None:
    text = INVOICE_HEADER + "F1,C1,2024-01-01,1,EUR\nF2,Crédit,2024-01-01,1,EUR\n"
    path = write(tmp_path, text, encoding="cp1252")
    utf8 = Mapping(source=SourceOptions(encoding="utf-8"))
    batch = parse_table(path, "invoices", utf8)
    assert [(e.line, e.column, e.value) for e in batch.errors] == [(3, FILE, "byte 0xe9")]
    batch = parse_table(path, "invoices", Mapping(source=SourceOptions(encoding="cp1252")))
    assert batch.errors == []
    assert batch.documents["customer_id"].to_list() == ["C1", "Crédit"]


@pytest.mark.parametrize("quoted", [False, True])
def test_a_10_mb_line_is_an_error_not_a_hang(tmp_path: Path, quoted: bool) -> None:
    path = tmp_path / "huge.csv"
    path.write_bytes(
        INVOICE_HEADER.encode()
        + (b'"' if quoted else b"")
        + b"x" * 10_000_000
        + b"\nF1,C1,2024-01-01,10,EUR\n"
    )
    start = time.perf_counter()
    batch = parse_table(path, "invoices")
    assert time.perf_counter() - start < 5
    assert [(e.line, e.column) for e in batch.errors] == [(2, ROW)]
    assert len(batch.errors[0].value) <= 200
    assert batch.documents["invoice_number"].to_list() == ["F1"]


def test_a_huge_amount_is_an_error(tmp_path: Path) -> None:
    text = INVOICE_HEADER + "F1,C1,2024-01-01," + "9" * 300 + ",EUR\nF2,C1,2024-01-01,1e3,EUR\n"
    batch = parse_table(write(tmp_path, text), "invoices")
    assert [(e.line, e.column) for e in batch.errors] == [(2, "amount"), (3, "amount")]
    assert batch.errors[0].expected.endswith("below 10^15")
    assert batch.errors[0].value.endswith("...")


def test_an_unclosed_quote_spoils_only_its_line(tmp_path: Path) -> None:
    text = INVOICE_HEADER + 'F1,"C1,2024-01-01,10,EUR\nF2,C2,2024-01-01,10,EUR\n'
    batch = parse_table(write(tmp_path, text), "invoices")
    assert [(e.line, e.column) for e in batch.errors] == [(2, ROW)]
    assert batch.documents["invoice_number"].to_list() == ["F2"]
    assert batch.errors[0].expected.startswith('a closing quote (") for the quoted field')


def test_quoted_line_breaks_and_crlf(tmp_path: Path) -> None:
    text = (
        "invoice_number;customer_id;customer_name;issue_date;amount;currency\r\n"
        '"F1";"C1";"Dupont\r\n\r\n""SA""; sarl";"2024-01-01";"1 000";"EUR"\r\n'
        'F2;C2;"a;b";2024-01-02;"2,5";EUR\r\n'
    )
    batch = parse_table(write(tmp_path, text), "invoices")
    assert located(batch) == [(2, "amount", "1 000")]
    assert batch.documents.select("_line", "customer_name", "amount_minor").rows() == [
        (5, "a;b", 250)
    ]
    batch = parse_table(
        write(tmp_path, text), "invoices", Mapping(source=SourceOptions(thousands=" "))
    )
    assert batch.errors == []
    assert batch.documents.select("_line", "customer_name", "amount_minor").rows() == [
        (2, 'Dupont\n\n"SA"; sarl', 100000),
        (5, "a;b", 250),
    ]


def test_decimal_separator_declared_by_the_mapping(tmp_path: Path) -> None:
    text = INVOICE_HEADER + 'F1,C1,2024-01-01,12.5,EUR\nF2,C1,2024-01-01,"12,5",EUR\n'
    path = write(tmp_path, text)
    assert parse_table(path, "invoices").errors == []
    dot = parse_table(path, "invoices", Mapping(source=SourceOptions(decimal=".")))
    assert located(dot) == [(3, "amount", "12,5")]
    comma = parse_table(path, "invoices", Mapping(source=SourceOptions(decimal=",")))
    assert located(comma) == [(2, "amount", "12.5")]
    text = INVOICE_HEADER.replace(",", ";") + "F1;C1;2024-01-01;1.234.567,89;EUR\n"
    european = Mapping(source=SourceOptions(decimal=",", thousands="."))
    batch = parse_table(write(tmp_path, text), "invoices", european)
    assert batch.documents["amount_minor"].to_list() == [123456789]


def test_value_map_to_empty_and_date_formats(tmp_path: Path) -> None:
    text = (
        "no,client,emise,echeance,montant,devise\n"
        "1,C1,31.01.2024,00.00.0000,5,EUR\n"
        "2,C1,01.02.2024,01.03.2024 10:30,5,EUR\n"
    )
    mapping = Mapping(
        source=SourceOptions(date_format="%d.%m.%Y"),
        columns={
            "invoice_number": "no",
            "customer_id": "client",
            "issue_date": "emise",
            "due_date": "echeance",
            "amount": "montant",
            "currency": "devise",
        },
        date_formats={"due_date": "%d.%m.%Y %H:%M"},
        values={"due_date": {"00.00.0000": None}},
    )
    batch = parse_table(write(tmp_path, text), "invoices", mapping)
    assert batch.errors == []
    assert batch.documents.select("issue_date", "due_date").rows() == [
        (D(2024, 1, 31), None),
        (D(2024, 2, 1), D(2024, 3, 1)),
    ]


def test_year_outside_1900_2199_is_refused(tmp_path: Path) -> None:
    text = INVOICE_HEADER + "F1,C1,0024-01-01,1,EUR\nF2,C1,2024-1-2,1,EUR\n"
    batch = parse_table(write(tmp_path, text), "invoices")
    assert located(batch) == [(2, "issue_date", "0024-01-01")]
    assert batch.documents["issue_date"].to_list() == [D(2024, 1, 2)]


def test_old_xls_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    batch = parse_table(path, "invoices")
    assert [(e.line, e.column) for e in batch.errors] == [(1, FILE)]
    assert ".xlsx" in batch.errors[0].expected


# --------------------------------------------------------------------------------------
# XLSX


def xlsx(tmp_path: Path, rows: list[list[object]], title: str = "Sheet") -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(row=number, column=column, value=value)
    path = tmp_path / "export.xlsx"
    book.save(path)
    return path


def test_xlsx_values_and_row_numbers(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        [
            ["invoice_number", "customer_id", "issue_date", "due_date", "amount", "currency",
             "disputed", "customer_name"],
            ["0000611365", "C1", dt.datetime(2024, 1, 15), D(2024, 2, 14), 1234.5, "EUR", True,
             " Dupont "],
            [],
            [611366, 42, "2024-01-16", None, 0.1 + 0.2, "eur", "non", None],
            ["F3", "C2", "2024-01-17", "2024-01-01", 100, "JPY", 1, "x"],
        ],
    )  # fmt: skip
    batch = parse_table(path, "invoices")
    assert located(batch) == [(5, "due_date", "2024-01-01")]
    assert batch.documents.select(
        "_line", "invoice_number", "customer_id", "customer_name", "issue_date", "due_date",
        "amount_minor", "currency", "disputed",
    ).rows() == [
        (2, "0000611365", "C1", "Dupont", D(2024, 1, 15), D(2024, 2, 14), 123450, "EUR", True),
        (4, "611366", "42", None, D(2024, 1, 16), None, 30, "EUR", False),
    ]  # fmt: skip


def test_xlsx_same_validations_and_mapping_sheet(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        [
            ["Export"],
            ["N°", "Client", "Date", "Montant", "Devise"],
            ["F1", "C1", "31/01/2024", -3, "EUR"],
            ["F2", None, D(2024, 1, 31), 10.005, "EUR"],
            ["F3", "C3", "31/01/2024", "1 234,56", "EUR"],
            ["F1", "C1", "31/01/2024", 7, "EUR"],
        ],
        title="Factures",
    )
    mapping = Mapping(
        source=SourceOptions(sheet="Factures", skip_rows=1, date_format="%d/%m/%Y",
                             decimal=",", thousands=" "),
        columns={"invoice_number": "N°", "customer_id": "Client", "issue_date": "Date",
                 "amount": "Montant", "currency": "Devise"},
    )  # fmt: skip
    batch = parse_table(path, "invoices", mapping)
    assert located(batch) == [
        (3, "amount (Montant)", "-3"),
        (4, "customer_id (Client)", ""),
        (4, "amount (Montant)", "10.005"),
    ]
    assert batch.documents.select("_line", "invoice_number", "amount_minor").rows() == [
        (5, "F3", 123456),
        (6, "F1", 700),
    ]
    missing = Mapping(source=SourceOptions(sheet="Avoirs"), columns=mapping.columns)
    batch = parse_table(path, "invoices", missing)
    assert [(e.line, e.column, e.value) for e in batch.errors] == [(1, FILE, "Avoirs")]
    assert "Factures" in batch.errors[0].expected


def test_xlsx_missing_columns_and_damaged_file(tmp_path: Path) -> None:
    path = xlsx(tmp_path, [["invoice_number", "amount"], ["F1", 3]])
    batch = parse_table(path, "invoices")
    assert located(batch) == [(1, "customer_id", ""), (1, "issue_date", ""), (1, "currency", "")]
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    batch = parse_table(damaged, "invoices")
    assert [(e.line, e.column) for e in batch.errors] == [(1, FILE)]
    assert "XLSX" in batch.errors[0].expected


# --------------------------------------------------------------------------------------
# properties


ALPHABET = list("abcdefgxyzABCÉéèàçœ€ -'&,;|\"\t\n0123456789")
CURRENCIES = ["EUR", "USD", "JPY", "KWD"]
TRUE_WORDS = ["true", "yes", "1", "oui", "Y", "TRUE", "Oui"]
FALSE_WORDS = ["false", "no", "0", "non", "N", "False"]


@st.composite
def invoice_rows(draw: st.DrawFn) -> list[dict[str, object]]:
    numbers = draw(
        st.lists(
            st.text(alphabet="0123456789ABZ-/", min_size=1, max_size=12),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    rows = []
    for number in numbers:
        currency = draw(st.sampled_from(CURRENCIES))
        issue = draw(st.dates(min_value=D(1990, 1, 1), max_value=D(2150, 12, 31)))
        delay = draw(st.none() | st.integers(min_value=0, max_value=365))
        rows.append(
            {
                "invoice_number": number,
                "customer_id": draw(st.text(alphabet="0123456789CX", min_size=1, max_size=8)),
                "customer_name": draw(
                    st.none()
                    | st.text(alphabet=ALPHABET, min_size=1, max_size=20)
                    .map(str.strip)
                    .filter(bool)
                ),
                "issue_date": issue,
                "due_date": None if delay is None else issue + dt.timedelta(days=delay),
                "amount_minor": draw(st.integers(min_value=1, max_value=10**14)),
                "currency": currency,
                "disputed": draw(st.none() | st.booleans()),
            }
        )
    return rows


def amount_text(minor: int, currency: str, decimal: str, trim: bool) -> str:
    digits = minor_digits(currency)
    if digits == 0:
        return str(minor)
    text = f"{minor // 10**digits}{decimal}{minor % 10**digits:0{digits}d}"
    return text.rstrip("0").rstrip(decimal) if trim else text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=invoice_rows(),
    separator=st.sampled_from([",", ";", "\t", "|"]),
    decimal=st.sampled_from([".", ","]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
    terminator=st.sampled_from(["\n", "\r\n"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    trim=st.booleans(),
    pad=st.sampled_from(["", " ", "\u00a0 "]),
    words=st.randoms(use_true_random=False),
)
def test_random_valid_rows_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, object]],
    separator: str,
    decimal: str,
    encoding: str,
    terminator: str,
    quoting: int,
    trim: bool,
    pad: str,
    words: object,
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator=terminator, quoting=quoting)
    columns = ["invoice_number", "customer_id", "customer_name", "issue_date", "due_date",
               "amount", "currency", "disputed"]  # fmt: skip
    writer.writerow(columns)
    for row in rows:
        disputed = row["disputed"]
        values = [
            row["invoice_number"],
            row["customer_id"],
            row["customer_name"] or "",
            row["issue_date"].isoformat(),
            row["due_date"].isoformat() if row["due_date"] else "",
            amount_text(row["amount_minor"], row["currency"], decimal, trim),
            row["currency"],
            "" if disputed is None else words.choice(TRUE_WORDS if disputed else FALSE_WORDS),
        ]
        if pad:  # spaces (and no-break spaces) around some values: stripped
            values = [pad + v + pad if v and words.random() < 0.3 else v for v in values]
        writer.writerow(values)
    path = tmp_path_factory.mktemp("round") / "invoices.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))
    batch = parse_table(path, "invoices")
    assert batch.errors == []
    got = batch.documents.select(
        "invoice_number", "customer_id", "customer_name", "issue_date", "due_date",
        "amount_minor", "currency", "disputed",
    ).to_dicts()  # fmt: skip
    assert got == rows


NUMBERS = (
    st.text(alphabet="0123456789", min_size=9, max_size=9)
    | st.text(alphabet="0123456789", min_size=14, max_size=14)
    | st.text(alphabet="0123456789", min_size=5, max_size=5).map(lambda s: "356000000" + s)
    | st.text(alphabet="0123456789", min_size=8, max_size=8).map(  # key + SIREN: valid VAT
        lambda s: stdnum_siren.to_tva(s + luhn.calc_check_digit(s))
    )
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(NUMBERS, min_size=1, max_size=30))
def test_siren_siret_vat_checks_agree_with_stdnum(tmp_path: Path, numbers: list[str]) -> None:
    """Each number as a SIREN, a SIRET and a VAT number (FR + number) on its own row: the
    rejected ones are exactly those python-stdnum rejects."""
    lines = ["customer_id,name,siren,siret,vat_number"]
    expected: list[tuple[int, str]] = []
    for i, number in enumerate(numbers):
        lines += [f"A{i},a,{number},,", f"B{i},b,,{number},", f"C{i},c,,,FR {number}"]
        line = 2 + 3 * i
        expected += [(line, "siren")] * (not stdnum_siren.is_valid(number))
        expected += [(line + 1, "siret")] * (not stdnum_siret.is_valid(number))
        expected += [(line + 2, "vat_number")] * (not stdnum_vat.is_valid("FR" + number))
    path = tmp_path / "ids.csv"
    path.write_text("\n".join(lines) + "\n")
    batch = parse_table(path, "customers")
    assert [(e.line, e.column) for e in batch.errors] == expected


def test_row_error_values_are_clipped() -> None:
    error = RowError("f.csv", 2, ROW, "x" * 100, "something")
    assert str(error).startswith("f.csv:2: column '(row)': got 'xxx")


def test_mapping_columns_must_belong_to_the_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "payment_id,customer_id,date,amount,currency\nP1,C1,2024-01-01,1,EUR\n")
    with pytest.raises(MappingError, match=r"columns\.due_date: not a column of payments"):
        parse_table(path, "payments", Mapping(columns={"due_date": "Echeance"}))


def test_a_value_map_may_fill_empty_cells(tmp_path: Path) -> None:
    text = INVOICE_HEADER + "F1,C1,2024-01-01,1,\nF2,C1,2024-01-01,1,usd\nF3,C1,2024-01-01,1,?\n"
    mapping = Mapping(values={"currency": {"": "EUR", "?": None}})
    batch = parse_table(write(tmp_path, text), "invoices", mapping)
    assert located(batch) == [(4, "currency", "?")]
    assert batch.errors[0].expected == "a value (this column is required)"
    assert batch.documents.select("invoice_number", "currency").rows() == [
        ("F1", "EUR"),
        ("F2", "USD"),
    ]


def test_spaces_around_fields_are_stripped(tmp_path: Path) -> None:
    text = INVOICE_HEADER + " F1 , C1,\u00a02024-01-01 , 1.5 ,eur \n"
    batch = parse_table(write(tmp_path, text), "invoices")
    assert located(batch) == []
    assert batch.documents.select(
        "invoice_number", "customer_id", "issue_date", "amount_minor", "currency"
    ).rows() == [("F1", "C1", D(2024, 1, 1), 150, "EUR")]
