"""Mapping files (TOML): loading, normalisation and the errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from encours.imports.mapping import (
    ALL_COLUMNS,
    INPUT_COLUMNS,
    REQUIRED,
    Mapping,
    MappingError,
    SourceOptions,
    load_mapping,
    mapping_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]
IBM_MAPPING = ROOT / "examples" / "mappings" / "ibm-ar.toml"
FIXTURES = ROOT / "tests" / "fixtures" / "tabular"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_ibm_example_mapping_loads() -> None:
    mapping = load_mapping(IBM_MAPPING)
    assert mapping.kind == "invoices"
    assert mapping.source == SourceOptions(separator=",", decimal=".", date_format="%m/%d/%Y")
    assert mapping.columns["invoice_number"] == "invoiceNumber"
    assert mapping.columns["paid_date"] == "SettledDate"
    assert mapping.values["disputed"] == {"Yes": "true", "No": "false"}
    assert mapping.values["channel"] == {"Paper": "paper", "Electronic": "electronic"}
    assert mapping.constants == {"currency": "USD"}
    assert "customer_name" not in mapping.columns
    assert mapping.date_format("issue_date") == "%m/%d/%Y"


def test_fixture_mapping_loads_with_every_section() -> None:
    mapping = load_mapping(FIXTURES / "erp-fr.toml")
    assert mapping.source == SourceOptions(
        separator=";",
        encoding="cp1252",
        decimal=",",
        thousands=" ",
        date_format="%d/%m/%Y",
        skip_rows=1,
    )
    assert mapping.columns["due_date"] == "Échéance"
    assert mapping.date_format("paid_date") == "%d/%m/%Y %H:%M"
    assert mapping.date_format("issue_date") == "%d/%m/%Y"
    assert mapping.values["disputed"] == {"En litige": "true", "-": "false"}
    assert mapping.values["document_type"] == {"FA": "invoice", "AV": "credit_note"}
    assert mapping.values["due_date"] == {"00/00/0000": None}


def test_defaults() -> None:
    mapping = mapping_from_dict({})
    assert mapping == Mapping()
    assert mapping.date_format("issue_date") == "%Y-%m-%d"


def test_value_and_constant_normalisation(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path,
            """
            [source]
            separator = "tab"
            encoding = "Windows-1252"
            [values.disputed]
            "Oui" = true
            "Non" = "no"
            "?" = ""
            [values.paid_date]
            "31/12/9999" = ""
            "jamais" = 2099-12-31
            [constants]
            currency = "usd"
            document_type = "Avoir"
            issue_date = 2024-01-31
            amount = 12.50
            channel = "Papier"
            """,
        )
    )
    assert mapping.source.separator == "\t"
    assert mapping.source.encoding == "cp1252"
    assert mapping.values["disputed"] == {"Oui": "true", "Non": "false", "?": None}
    assert mapping.values["paid_date"] == {"31/12/9999": None, "jamais": "2099-12-31"}
    assert mapping.constants == {
        "currency": "USD",
        "document_type": "credit_note",
        "issue_date": "2024-01-31",
        "amount": "12.5",
        "channel": "paper",
    }


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ("kind = 'invoice'", "kind", "customers, invoices, payments"),
        ("colums = {}", "colums", "unknown key"),
        ("[source]\nseperator = ';'", "source.seperator", "unknown key"),
        ("[source]\nseparator = ':'", "source.separator", "expected one of"),
        ("[source]\nencoding = 'utf-16'", "source.encoding", "utf-8 or cp1252"),
        ("[source]\ndecimal = ' '", "source.decimal", '"." or ","'),
        ("[source]\ndecimal = ','\nthousands = ','", "source.thousands", "decimal"),
        ("[source]\nthousands = '.'", "source.thousands", 'decimal = ","'),
        ("[source]\nthousands = ','", "source.thousands", 'decimal = "."'),
        ("[source]\nthousands = 'ab'", "source.thousands", "one character"),
        ("[source]\ndate_format = 'dd/mm/yyyy'", "source.date_format", "strftime"),
        ("[source]\ndate_format = '%d/%m'", "source.date_format", "a day, a month and a year"),
        ("[source]\nskip_rows = -1", "source.skip_rows", ">= 0"),
        ("[source]\nskip_rows = true", "source.skip_rows", ">= 0"),
        ("[columns]\ninvoice_numbr = 'No'", "columns.invoice_numbr", "unknown canonical column"),
        ("[columns]\namount = ''", "columns.amount", "source column name"),
        ("[columns]\namount = 3", "columns.amount", "source column name"),
        ("columns = 3", "columns", "expected a table"),
        ("[date_formats]\namount = '%d/%m/%Y'", "date_formats.amount", "not a date column"),
        ("[values.disputed]\nYes = 'maybe'", "values.disputed.Yes", "true or false"),
        ("[values.channel]\nX = 'fax'", "values.channel.X", "paper or electronic"),
        ("[values.disputed]\nYes = [1]", "values.disputed.Yes", "a single value"),
        ("[values]\ndisputed = 1", "values.disputed", "source value = canonical value"),
        ("[values.issue_date]\nX = 'soon'", "values.issue_date.X", "expected a date"),
        ("[constants]\ncurrency = 'EURO'", "constants.currency", "3-letter"),
        ("[constants]\namount = '-5'", "constants.amount", ">= 0"),
        ("[constants]\namount = true", "constants.amount", "expected a string"),
        ("[constants]\ncurrency = ''", "constants.currency", "cannot be empty"),
        ("[constants]\ndocument_type = 'bill'", "constants.document_type", "credit_note"),
        (
            "[columns]\ncurrency = 'Dev'\n[constants]\ncurrency = 'EUR'",
            "constants.currency",
            "also",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, toml: str, key: str, words: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message


def test_columns_are_checked_against_the_kind(tmp_path: Path) -> None:
    path = write(tmp_path, 'kind = "payments"\n[columns]\ndue_date = "Echeance"\n')
    with pytest.raises(MappingError, match=r"columns\.due_date: unknown canonical column"):
        load_mapping(path)
    # without a kind, any canonical column of any kind is accepted
    assert load_mapping(write(tmp_path, '[columns]\ndue_date = "Echeance"\n')).columns == {
        "due_date": "Echeance"
    }


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[columns\namount = 'X'\n")
    with pytest.raises(MappingError, match=r"mapping\.toml: invalid TOML"):
        load_mapping(path)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "nope.toml")
    path = tmp_path / "latin.toml"
    path.write_bytes("[columns]\namount = 'Montant r\xe9gl\xe9'\n".encode("cp1252"))
    with pytest.raises(MappingError, match="UTF-8"):
        load_mapping(path)


def test_column_tables_are_consistent() -> None:
    for kind, required in REQUIRED.items():
        assert set(required) <= set(INPUT_COLUMNS[kind])
    assert ALL_COLUMNS["amount"] == "amount"
    assert ALL_COLUMNS["credit_limit"] == "amount"
