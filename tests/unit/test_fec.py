"""Tests of the FEC parser (encours.imports.fec)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from encours.imports.canonical import (
    ALLOCATION_SCHEMA,
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
)
from encours.imports.fec import FEC_COLUMNS, classify_journal, parse_fec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "fec"
CLEAN = FIXTURES / "clean.txt"
HEADER = "|".join(FEC_COLUMNS)


def fec_line(**values: str) -> str:
    """One FEC line (| separated) with sensible defaults for the fields not given."""
    defaults = {
        "JournalCode": "VT",
        "JournalLib": "Ventes",
        "EcritureNum": "1",
        "EcritureDate": "20240105",
        "CompteNum": "411000",
        "CompteLib": "Clients",
        "PieceDate": "20240105",
        "EcritureLib": "Ecriture",
        "ValidDate": "20240106",
    }
    defaults.update(values)
    return "|".join(defaults.get(name, "") for name in FEC_COLUMNS)


def write_fec(tmp_path: Path, lines: list[str], name: str = "fec.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def frames(batch: CanonicalBatch) -> list[pl.DataFrame]:
    return [batch.customers, batch.documents, batch.payments, batch.allocations]


def assert_same_batch(left: CanonicalBatch, right: CanonicalBatch) -> None:
    for a, b in zip(frames(left), frames(right), strict=True):
        assert_frame_equal(a, b)


def rows(frame: pl.DataFrame, *columns: str) -> list[tuple]:
    return frame.select(columns).rows()


# --------------------------------------------------------------------------- clean file


@pytest.fixture(scope="module")
def clean() -> CanonicalBatch:
    return parse_fec(CLEAN)


def test_clean_file_has_no_errors_and_canonical_schemas(clean: CanonicalBatch) -> None:
    assert clean.errors == []
    assert clean.source.endswith("clean.txt")
    assert clean.customers.schema == pl.Schema(CUSTOMER_SCHEMA)
    assert clean.documents.schema == pl.Schema(DOCUMENT_SCHEMA)
    assert clean.payments.schema == pl.Schema(PAYMENT_SCHEMA)
    assert clean.allocations.schema == pl.Schema(ALLOCATION_SCHEMA)


def test_clean_customers(clean: CanonicalBatch) -> None:
    assert rows(clean.customers, "_line", "customer_id", "name", "currency") == [
        (2, "CLI001", "Dupont SARL", "EUR"),
        (3, "CLI002", "Bâtiments Léon & Fils", "EUR"),
        (12, "411MARTIN", "Martin SA", "EUR"),  # no CompAuxNum: CompteNum / CompteLib
    ]


def test_clean_documents(clean: CanonicalBatch) -> None:
    d = dt.date
    leon = "Bâtiments Léon & Fils"
    assert rows(
        clean.documents,
        "_line",
        "invoice_number",
        "document_type",
        "customer_id",
        "customer_name",
        "issue_date",
        "amount_minor",
        "currency",
    ) == [
        (2, "F2023-118", "invoice", "CLI001", "Dupont SARL", d(2023, 12, 15), 120000, "EUR"),
        (5, "F2024-001", "invoice", "CLI001", "Dupont SARL", d(2024, 1, 5), 144000, "EUR"),
        # two instalment lines with the same PieceRef: summed
        (8, "F2024-002", "invoice", "CLI002", leon, d(2024, 1, 10), 240000, "EUR"),
        (12, "F2024-003", "invoice", "411MARTIN", "Martin SA", d(2024, 1, 15), 60000, "EUR"),
        (15, "AV2024-001", "credit_note", "CLI001", "Dupont SARL", d(2024, 1, 20), 24000, "EUR"),
        (18, "F2024-004", "invoice", "CLI001", "Dupont SARL", d(2024, 1, 22), 48000, "EUR"),
        # a bounced cheque (411 debit on the bank journal): a debit document
        (32, "BQ-12-CLI002-1", "invoice", "CLI002", leon, d(2024, 2, 20), 100000, "EUR"),
        # Montantdevise / Idevise ignored: the amount is the EUR Debit
        (36, "F2024-005", "invoice", "CLI001", "Dupont SARL", d(2024, 3, 1), 92000, "EUR"),
    ]  # fmt: skip
    assert clean.documents.get_column("due_date").null_count() == clean.documents.height


def test_clean_payments(clean: CanonicalBatch) -> None:
    d = dt.date
    assert rows(clean.payments, "_line", "payment_id", "customer_id", "date", "amount_minor") == [
        (3, "AN-1-CLI002-1", "CLI002", d(2024, 1, 1), 30000),  # opening credit: on account
        (22, "BQ-7-CLI001-1", "CLI001", d(2024, 1, 25), 120000),
        (24, "BQ-8-CLI001-1", "CLI001", d(2024, 1, 31), 144000),
        (26, "BQ-9-411MARTIN-1", "411MARTIN", d(2024, 2, 5), 25000),
        (27, "BQ-9-CLI002-1", "CLI002", d(2024, 2, 5), 100000),
        (29, "BQ-10-CLI001-1", "CLI001", d(2024, 2, 10), 24000),
        (31, "BQ-11-CLI002-1", "CLI002", d(2024, 2, 15), 90000),
    ]
    assert clean.payments.get_column("currency").unique().to_list() == ["EUR"]


def test_clean_allocations(clean: CanonicalBatch) -> None:
    assert rows(
        clean.allocations,
        "_line",
        "invoice_number",
        "payment_id",
        "credit_note_number",
        "amount_minor",
    ) == [
        (3, "F2024-002", "AN-1-CLI002-1", None, 30000),  # letter E: 300 + 900 of 2400
        (15, "F2024-004", None, "AV2024-001", 24000),  # letter D: credit note first (older)
        (22, "F2023-118", "BQ-7-CLI001-1", None, 120000),  # letter A
        (24, "F2024-001", "BQ-8-CLI001-1", None, 144000),  # letter B
        (26, "F2024-003", "BQ-9-411MARTIN-1", None, 25000),  # letter a: partial
        (27, "BQ-12-CLI002-1", "BQ-9-CLI002-1", None, 100000),  # letter F: bounced cheque
        (29, "F2024-004", "BQ-10-CLI001-1", None, 24000),
        (31, "F2024-002", "BQ-11-CLI002-1", None, 90000),
    ]


def test_lettered_invoice_paid_in_full_is_fully_allocated(clean: CanonicalBatch) -> None:
    allocated = clean.allocations.group_by("invoice_number").agg(pl.col("amount_minor").sum())
    amounts = dict(rows(clean.documents, "invoice_number", "amount_minor"))
    done = dict(rows(allocated, "invoice_number", "amount_minor"))
    for number in ("F2023-118", "F2024-001", "F2024-004"):
        assert done[number] == amounts[number]
    assert done["F2024-002"] == 120000  # only the lettered instalment
    assert done["F2024-003"] == 25000


def test_parsing_twice_gives_equal_frames(clean: CanonicalBatch) -> None:
    assert_same_batch(parse_fec(CLEAN), clean)


# --------------------------------------------------------------------------- encodings, variants


def test_tab_cp1252_crlf_gives_the_same_result(clean: CanonicalBatch) -> None:
    raw = (FIXTURES / "clean_tab_cp1252.txt").read_bytes()
    assert b"\t" in raw and b"\r\n" in raw and "Léon".encode("cp1252") in raw
    batch = parse_fec(FIXTURES / "clean_tab_cp1252.txt")
    assert batch.errors == []
    assert_same_batch(batch, clean)


def test_utf8_bom(tmp_path: Path, clean: CanonicalBatch) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + CLEAN.read_bytes())
    batch = parse_fec(path)
    assert batch.errors == []
    assert_same_batch(batch, clean)


def test_trailing_separator_and_dot_decimals(tmp_path: Path, clean: CanonicalBatch) -> None:
    lines = CLEAN.read_text("utf-8").splitlines()
    header, body = lines[0], lines[1:]
    body = [_with_dot_amounts(line) + "|" for line in body]
    path = tmp_path / "trailing.txt"
    path.write_text("\n".join([header + "|", *body]) + "\n", encoding="utf-8")
    batch = parse_fec(path)
    assert batch.errors == []
    assert_same_batch(batch, clean)


def _with_dot_amounts(line: str) -> str:
    fields = line.split("|")
    for name in ("Debit", "Credit"):
        i = FEC_COLUMNS.index(name)
        fields[i] = fields[i].replace(",", ".")
    return "|".join(fields)


def test_montant_sens_variant(tmp_path: Path, clean: CanonicalBatch) -> None:
    debit, credit = FEC_COLUMNS.index("Debit"), FEC_COLUMNS.index("Credit")
    lines = CLEAN.read_text("utf-8").splitlines()
    header = lines[0].replace("|Debit|Credit|", "|Montant|Sens|")
    body = []
    for n, line in enumerate(lines[1:]):
        fields = line.split("|")
        is_debit = fields[debit] != "0,00"
        amount = fields[debit] if is_debit else fields[credit]
        sens = ("D", "+1")[n % 2] if is_debit else ("C", "-1")[n % 2]
        fields[debit], fields[credit] = amount, sens
        body.append("|".join(fields))
    path = tmp_path / "montant_sens.txt"
    path.write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    batch = parse_fec(path)
    assert batch.errors == []
    assert_same_batch(batch, clean)


def test_empty_amount_is_zero_and_zero_lines_are_ignored(tmp_path: Path) -> None:
    path = write_fec(
        tmp_path,
        [
            fec_line(CompAuxNum="C1", CompAuxLib="Un", PieceRef="F1", Debit="12,5", Credit=""),
            fec_line(CompAuxNum="C2", CompAuxLib="Deux", PieceRef="F2", Debit="", Credit="0"),
            fec_line(CompteNum="706000", PieceRef="F1", Credit="12,50"),
        ],
    )
    batch = parse_fec(path)
    assert batch.errors == []
    assert rows(batch.documents, "invoice_number", "amount_minor") == [("F1", 1250)]
    assert rows(batch.customers, "customer_id") == [("C1",), ("C2",)]


# --------------------------------------------------------------------------- errors


def test_bad_lines_are_all_reported() -> None:
    path = FIXTURES / "bad_lines.txt"
    batch = parse_fec(path)
    found = [(e.line, e.column, e.value) for e in batch.errors]
    assert found == [
        (4, "(line)", found[0][2]),
        (5, "EcritureDate", "20241332"),
        (5, "PieceDate", "20241332"),
        (6, "Credit", "abc"),
        (7, "Credit", "5,00"),  # debit and credit both non-zero
        (8, "Debit", "100,005"),  # finer than the cent
        (9, "PieceRef", ""),  # an invoice without number
        (10, "DateLet", "2024-01-05"),
        (11, "Debit", "-50,00"),
        (12, "CompteNum", ""),
        (13, "PieceRef", "F100"),  # duplicate invoice number
        (14, "(line)", found[11][2]),
        (17, "Credit", "1 200,00"),  # thousands separator
        (18, "PieceDate", "20240230"),
        (19, "EcritureDate", "2024011"),
        (19, "Credit", "12;50"),
    ]
    assert all(e.file == str(path) for e in batch.errors)
    assert "18 fields" in batch.errors[0].expected and "found 17" in batch.errors[0].expected
    assert "found 19" in batch.errors[11].expected
    assert "line 2" in batch.errors[10].expected  # the duplicate names the first use
    assert "2 decimals" in batch.errors[5].expected
    # the good lines still make records, the bad ones nothing
    assert rows(batch.documents, "_line", "invoice_number", "amount_minor") == [(2, "F100", 10000)]
    assert rows(batch.payments, "_line", "payment_id") == [(16, "BQ-11-CLI001-1")]
    assert rows(batch.allocations, "invoice_number", "payment_id", "amount_minor") == [
        ("F100", "BQ-11-CLI001-1", 10000)
    ]


def test_renamed_and_missing_header_columns(tmp_path: Path) -> None:
    header = HEADER.replace("|Debit|", "|Debits|").replace("|Idevise", "")
    path = tmp_path / "header.txt"
    path.write_text(header + "\n" + fec_line(PieceRef="F1", Debit="1,00") + "\n")
    batch = parse_fec(path)
    assert [(e.line, e.column, e.value) for e in batch.errors] == [
        (1, "Debit", "Debits"),
        (1, "Idevise", ""),
    ]
    assert "column 12" in batch.errors[0].expected
    assert batch.documents.is_empty() and batch.customers.is_empty()
    assert batch.documents.schema == pl.Schema(DOCUMENT_SCHEMA)


def test_unexpected_and_misplaced_header_columns(tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text(HEADER + "|Commentaire\n")
    errors = parse_fec(extra).errors
    assert [(e.line, e.column) for e in errors] == [(1, "Commentaire")]

    names = list(FEC_COLUMNS)
    names[0], names[1] = names[1], names[0]
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("|".join(names) + "\n")
    errors = parse_fec(swapped).errors
    assert [(e.column, e.value) for e in errors] == [
        ("JournalCode", "JournalLib"),
        ("JournalLib", "JournalCode"),
    ]


def test_header_names_are_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "case.txt"
    line = fec_line(CompAuxNum="C1", PieceRef="F1", Debit="1,00")
    path.write_text(HEADER.replace("Montantdevise", "MontantDevise").upper() + "\n" + line)
    batch = parse_fec(path)
    assert batch.errors == []
    assert rows(batch.documents, "invoice_number", "amount_minor") == [("F1", 100)]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"JournalCode;JournalLib;EcritureNum\n",
        b"VT|Ventes|1|20240105|411000|Clients|||F1|20240105|Facture|1,00|||||\n",
    ],
)
def test_missing_header(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    batch = parse_fec(path)
    assert [(e.line, e.column) for e in batch.errors] == [(1, "(header)")]
    assert batch.payments.is_empty()


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes((HEADER + "\n" + fec_line() + "\n").encode() + b"VT|\x81\n")
    batch = parse_fec(path)
    assert [(e.line, e.column, e.value) for e in batch.errors] == [(3, "(file)", "0x81")]


def test_amount_finer_than_the_currency_allows(tmp_path: Path) -> None:
    path = write_fec(
        tmp_path,
        [
            fec_line(PieceRef="F1", Debit="1200,00"),
            fec_line(PieceRef="F2", EcritureNum="2", Debit="1200,50"),
        ],
    )
    batch = parse_fec(path, currency="JPY")
    assert rows(batch.documents, "invoice_number", "amount_minor", "currency") == [
        ("F1", 1200, "JPY")
    ]
    assert [(e.line, e.column) for e in batch.errors] == [(3, "Debit")]


# --------------------------------------------------------------------------- journals


@pytest.mark.parametrize(
    ("code", "label", "kind"),
    [
        ("VT", "", "sales"),
        ("VE", "Journal", "sales"),
        ("VTE", "", "sales"),
        ("FAC", "Journal des VENTES", "sales"),
        ("SL", "Sales journal", "sales"),
        ("BQ", "", "bank"),
        ("BQ2", "", "bank"),
        ("BQSG", "Société Générale", "bank"),
        ("BNK", "", "bank"),
        ("CIC", "Banque CIC", "bank"),
        ("AN", "", "opening"),
        ("RAN", "Reprise", "opening"),
        ("XX", "A-nouveaux", "opening"),
        ("OD", "Opérations diverses", "other"),
        ("AC", "Achats", "other"),
        ("CA", "Caisse", "other"),
    ],
)
def test_default_journal_classification(code: str, label: str, kind: str) -> None:
    assert classify_journal(code, [label] if label else []) == kind


def test_explicit_journal_lists_replace_the_default_rule() -> None:
    assert classify_journal("FAC", [], sales_journals={"fac"}) == "sales"
    assert classify_journal("VT", ["Ventes"], sales_journals={"FAC"}) == "other"
    assert classify_journal("VT", ["Ventes"], bank_journals={"VT"}) == "bank"
    assert classify_journal("BQ", [], bank_journals={"BNP"}) == "other"
    assert classify_journal("OUV", [], opening_journals={"OUV"}) == "opening"


def test_a_journal_cannot_be_listed_as_two_kinds() -> None:
    with pytest.raises(ValueError, match="VT"):
        parse_fec(CLEAN, sales_journals={"VT"}, bank_journals={"vt", "BQ"})


def test_journal_override_in_parse(tmp_path: Path) -> None:
    lines = [
        fec_line(JournalCode="FAC", JournalLib="Facturation", CompAuxNum="C1", PieceRef="F1",
                 Debit="100,00", EcritureLet="A"),
        fec_line(JournalCode="FAC", JournalLib="Facturation", CompteNum="706000", PieceRef="F1",
                 Credit="100,00"),
        fec_line(JournalCode="CA", JournalLib="Caisse", EcritureNum="2", CompAuxNum="C1",
                 PieceRef="R1", Credit="100,00", EcritureLet="A"),
    ]  # fmt: skip
    path = write_fec(tmp_path, lines)
    default = parse_fec(path)
    # FAC is not recognised: its debit is a debit document numbered like a payment
    assert rows(default.documents, "invoice_number") == [("FAC-1-C1-1",)]
    overridden = parse_fec(path, sales_journals={"FAC"})
    assert overridden.errors == []
    assert rows(overridden.documents, "invoice_number", "amount_minor") == [("F1", 10000)]
    assert rows(overridden.payments, "payment_id", "amount_minor") == [("CA-2-C1-1", 10000)]
    assert rows(overridden.allocations, "invoice_number", "payment_id") == [("F1", "CA-2-C1-1")]


def test_opening_balances_with_one_pieceref_for_several_customers(tmp_path: Path) -> None:
    an = {"JournalCode": "AN", "JournalLib": "A nouveaux", "PieceRef": "AN2024"}
    path = write_fec(
        tmp_path,
        [
            fec_line(**an, CompAuxNum="C1", CompAuxLib="Un", Debit="100,00"),
            fec_line(**an, CompAuxNum="C2", CompAuxLib="Deux", Debit="50,00"),
            fec_line(**an, CompAuxNum="C3", CompAuxLib="Trois", Credit="20,00"),
            fec_line(**an, CompteNum="890000", Credit="130,00"),
        ],
    )
    batch = parse_fec(path)
    assert batch.errors == []
    assert rows(batch.documents, "invoice_number", "customer_id", "amount_minor") == [
        ("AN2024-C1", "C1", 10000),
        ("AN2024-C2", "C2", 5000),
    ]
    assert rows(batch.payments, "payment_id", "amount_minor") == [("AN-1-C3-1", 2000)]


def test_refund_of_a_credit_note_is_a_debit_document(tmp_path: Path) -> None:
    bank = {"JournalCode": "BQ", "JournalLib": "Banque", "EcritureNum": "2"}
    path = write_fec(
        tmp_path,
        [
            fec_line(CompAuxNum="C1", PieceRef="AV1", Credit="50,00", EcritureLet="R"),
            fec_line(CompteNum="706000", PieceRef="AV1", Debit="50,00"),
            fec_line(**bank, CompAuxNum="C1", PieceRef="REMB", Debit="50,00", EcritureLet="R"),
            fec_line(**bank, CompteNum="512000", PieceRef="REMB", Credit="50,00"),
        ],
    )
    batch = parse_fec(path)
    assert batch.errors == []
    assert rows(batch.documents, "invoice_number", "document_type", "amount_minor") == [
        ("AV1", "credit_note", 5000),
        ("BQ-2-C1-1", "invoice", 5000),
    ]
    assert batch.payments.is_empty()
    assert rows(batch.allocations, "_line", "invoice_number", "credit_note_number") == [
        (2, "BQ-2-C1-1", "AV1")
    ]


def test_payment_ids_do_not_depend_on_line_numbers(tmp_path: Path, clean: CanonicalBatch) -> None:
    lines = CLEAN.read_text("utf-8").splitlines()
    extra = fec_line(JournalCode="OD", EcritureNum="99", CompteNum="601000", Debit="1,00")
    path = tmp_path / "shifted.txt"
    path.write_text("\n".join([lines[0], extra, extra, *lines[1:]]) + "\n", encoding="utf-8")
    shifted = parse_fec(path)
    assert shifted.payments.get_column("payment_id").to_list() == (
        clean.payments.get_column("payment_id").to_list()
    )
    assert shifted.payments.get_column("_line").to_list() == [
        line + 2 for line in clean.payments.get_column("_line").to_list()
    ]


# --------------------------------------------------------------------------- properties

CUSTOMERS = ["C1", "C2", "C3"]
LETTERS = ["A", "B", "a", None]


@st.composite
def ledgers(draw: st.DrawFn) -> list[dict]:
    """Random balanced entries: invoices (one or two 411 lines), credit notes, payments."""
    entries = []
    for number in range(1, draw(st.integers(1, 25)) + 1):
        kind = draw(st.sampled_from(["invoice", "invoice", "credit_note", "payment"]))
        parts = draw(st.integers(1, 2)) if kind == "invoice" else 1
        entries.append(
            {
                "kind": kind,
                "entry": str(number),
                "customer": draw(st.sampled_from(CUSTOMERS)),
                "date": dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 60))),
                "ref": f"{'AV' if kind == 'credit_note' else 'F'}{draw(st.integers(1, 999)):03d}",
                "lines": [
                    (draw(st.integers(1, 10**7)), draw(st.sampled_from(LETTERS)))
                    for _ in range(parts)
                ],
            }
        )
    return entries


def render(entries: list[dict]) -> tuple[str, list[dict]]:
    """FEC text and, for each 411 line, what the parser should see (dropping duplicates)."""
    text = [HEADER]
    seen_refs: set[str] = set()
    items = []
    for e in entries:
        journal = "BQ" if e["kind"] == "payment" else "VT"
        date = e["date"].strftime("%Y%m%d")
        duplicate = e["kind"] != "payment" and e["ref"] in seen_refs
        if e["kind"] != "payment":
            seen_refs.add(e["ref"])
        total = 0
        for amount, letter in e["lines"]:
            money = f"{amount // 100},{amount % 100:02d}"
            debit = e["kind"] == "invoice"
            text.append(
                fec_line(JournalCode=journal, JournalLib="", EcritureNum=e["entry"],
                         EcritureDate=date, PieceDate=date, CompAuxNum=e["customer"],
                         PieceRef=e["ref"], Debit=money if debit else "",
                         Credit="" if debit else money, EcritureLet=letter or "")
            )  # fmt: skip
            total += amount
            if not duplicate:
                key = e["ref"] if e["kind"] != "payment" else f"BQ-{e['entry']}-{e['customer']}-1"
                items.append(
                    {"kind": e["kind"], "key": key, "customer": e["customer"], "date": e["date"],
                     "line": len(text), "amount": amount, "letter": letter}
                )  # fmt: skip
        counterpart = f"{total // 100},{total % 100:02d}"
        debit = e["kind"] != "invoice"
        text.append(
            fec_line(JournalCode=journal, JournalLib="", EcritureNum=e["entry"],
                     EcritureDate=date, CompteNum="706000" if journal == "VT" else "512000",
                     PieceRef=e["ref"], Debit=counterpart if debit else "",
                     Credit="" if debit else counterpart)
        )  # fmt: skip
    return "\n".join(text) + "\n", items


def reference_allocations(items: list[dict]) -> dict[tuple, int]:
    """Naive oldest-first matching of each letter group, one pair at a time."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for item in items:
        if item["letter"] is not None:
            groups[item["customer"], item["letter"]].append(item)
    result: dict[tuple, int] = defaultdict(int)
    for members in groups.values():
        debits: dict[str, list] = {}
        credits: dict[tuple, list] = {}
        for it in members:
            if it["kind"] == "invoice":
                entry = debits.setdefault(it["key"], [it["date"], it["key"], 0])
                entry[2] += it["amount"]
            else:
                key = (it["kind"], it["key"])
                entry = credits.setdefault(key, [it["date"], it["line"], 0, key])
                entry[1] = min(entry[1], it["line"])
                entry[2] += it["amount"]
        owed = sorted(debits.values())
        paid = sorted(credits.values())
        i = j = 0
        while i < len(owed) and j < len(paid):
            amount = min(owed[i][2], paid[j][2])
            result[owed[i][1], paid[j][3]] += amount
            owed[i][2] -= amount
            paid[j][2] -= amount
            i += owed[i][2] == 0
            j += paid[j][2] == 0
    return dict(result)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=ledgers())
def test_allocations_conserve_money(tmp_path_factory: pytest.TempPathFactory, entries) -> None:
    text, items = render(entries)
    path = tmp_path_factory.mktemp("fec") / "random.txt"
    path.write_text(text, encoding="utf-8")
    batch = parse_fec(path)
    assert all("used once" in e.expected for e in batch.errors)  # only duplicated numbers

    alloc = batch.allocations
    assert (alloc.get_column("amount_minor") > 0).all()
    one_credit = pl.col("payment_id").is_null() ^ pl.col("credit_note_number").is_null()
    assert alloc.select(one_credit.all()).item()
    docs = dict(rows(batch.documents, "invoice_number", "amount_minor"))
    pays = dict(rows(batch.payments, "payment_id", "amount_minor"))
    for column, amounts in (
        ("invoice_number", docs),
        ("payment_id", pays),
        ("credit_note_number", docs),
    ):
        used = alloc.drop_nulls(column).group_by(column).agg(pl.col("amount_minor").sum())
        for key, amount in used.rows():
            assert amount <= amounts[key]

    # per letter group: min(debits, credits) is matched, and oldest-first
    expected = reference_allocations(items)
    got = {
        (inv, ("payment", pay) if pay else ("credit_note", note)): amount
        for inv, pay, note, amount in rows(
            alloc, "invoice_number", "payment_id", "credit_note_number", "amount_minor"
        )
    }
    assert got == {key: value for key, value in expected.items() if value}

    groups: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for it in items:
        if it["letter"] is not None:
            groups[it["customer"], it["letter"]][it["kind"] != "invoice"] += it["amount"]
    assert alloc.get_column("amount_minor").sum() == sum(min(d, c) for d, c in groups.values())

    assert_same_batch(parse_fec(path), batch)  # idempotent


@settings(max_examples=30, deadline=None)
@given(entries=ledgers())
def test_documents_and_payments_keep_every_amount(
    tmp_path_factory: pytest.TempPathFactory, entries
) -> None:
    text, items = render(entries)
    path = tmp_path_factory.mktemp("fec") / "random.txt"
    path.write_text(text, encoding="utf-8")
    batch = parse_fec(path)
    debit_total = sum(it["amount"] for it in items if it["kind"] == "invoice")
    credit_total = sum(it["amount"] for it in items if it["kind"] != "invoice")
    docs = batch.documents
    assert docs.filter(pl.col("document_type") == "invoice")["amount_minor"].sum() == debit_total
    notes = docs.filter(pl.col("document_type") == "credit_note")["amount_minor"].sum()
    assert notes + batch.payments["amount_minor"].sum() == credit_total


@pytest.mark.slow
def test_large_file_parses_quickly(tmp_path: Path) -> None:
    rng = random.Random(7)
    out = [HEADER]
    for e in range(1, 50_001):
        cust, amount = f"C{rng.randrange(2000):04d}", rng.randint(100, 10**7)
        money = f"{amount // 100},{amount % 100:02d}"
        day = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        for journal, account, debit in (
            ("VT", "411000", True),
            ("VT", "706000", False),
            ("BQ", "512000", True),
            ("BQ", "411000", False),
            ("OD", "601000", True),
            ("OD", "401000", False),
        ):
            aux = cust if account == "411000" else ""
            out.append(
                f"{journal}|J|{journal}{e}|{day}|{account}|L|{aux}|{aux}|F{e}|{day}|x|"
                f"{money if debit else ''}|{'' if debit else money}|L{e}||{day}||"
            )
    path = tmp_path / "big.txt"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    batch = parse_fec(path)
    assert batch.errors == []
    assert batch.documents.height == batch.payments.height == batch.allocations.height == 50_000
