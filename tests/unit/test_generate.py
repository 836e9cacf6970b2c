"""The synthetic portfolio generator (encours.generate) and `encours generate`."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import typer
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.fr import tva as fr_tva
from typer.testing import CliRunner

from encours.generate import (
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    PAYMENT_COLUMNS,
    SEGMENTS,
    GenerationSummary,
    generate_portfolio,
)
from encours.imports.canonical import CUSTOMER_SCHEMA, DOCUMENT_SCHEMA, PAYMENT_SCHEMA

END = dt.date(2025, 6, 30)
FORMATS_MD = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
AMOUNT = re.compile(r"^\d+\.\d{2}$")


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)  # everything as text, as written


class Portfolio:
    def __init__(self, out: Path, summary: GenerationSummary) -> None:
        self.out = out
        self.summary = summary
        self.customers = _read(out / "customers.csv")
        self.documents = _read(out / "invoices.csv")
        self.payments = _read(out / "payments.csv")

    @property
    def invoices(self) -> pl.DataFrame:
        return self.documents.filter(pl.col("document_type") == "invoice")

    @property
    def credit_notes(self) -> pl.DataFrame:
        return self.documents.filter(pl.col("document_type") == "credit_note")


def _generate(out: Path, **kwargs: object) -> Portfolio:
    args: dict[str, object] = {"customers": 400, "invoices": 20_000, "seed": 11, "end": END}
    args.update(kwargs)
    summary = generate_portfolio(out, **args)  # type: ignore[arg-type]
    return Portfolio(out, summary)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Portfolio:
    """20k invoices written in chunks of 3,000."""
    return _generate(tmp_path_factory.mktemp("portfolio"), chunk_size=3_000)


@pytest.fixture(scope="module", params=["chunks", "tiny_chunks"])
def any_portfolio(
    request: pytest.FixtureRequest, portfolio: Portfolio, tmp_path_factory: pytest.TempPathFactory
) -> Portfolio:
    """The main portfolio, and a small one streamed in chunks of 13 invoices."""
    if request.param == "chunks":
        return portfolio
    out = tmp_path_factory.mktemp("tiny")
    return _generate(out, customers=40, invoices=700, seed=5, months=6, chunk_size=13)


def _canonical_columns(section: str) -> list[str]:
    """Column names of a table of docs/formats.md (`## <section> (...`)."""
    text = FORMATS_MD.read_text(encoding="utf-8")
    body = text.split(f"## {section} (", 1)[1].split("\n## ", 1)[0]
    columns: list[str] = []
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("| column") and "---" not in line:
            columns += [c.strip() for c in line.split("|")[1].split(",")]
    return columns


def _as_minor(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Decimal(20, 2)) * 100).cast(pl.Int64)


# -- determinism -------------------------------------------------------------------------


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = _generate(tmp_path / "a", customers=120, invoices=3_000, seed=42, chunk_size=700)
    b = _generate(tmp_path / "b", customers=120, invoices=3_000, seed=42, chunk_size=700)
    c = _generate(tmp_path / "c", customers=120, invoices=3_000, seed=43, chunk_size=700)
    for name in ("customers.csv", "invoices.csv", "payments.csv"):
        assert (a.out / name).read_bytes() == (b.out / name).read_bytes()
        assert (a.out / name).read_bytes() != (c.out / name).read_bytes()
    assert a.summary.to_dict() | {"out_dir": "", "files": {}} == b.summary.to_dict() | {
        "out_dir": "",
        "files": {},
    }


# -- shape -------------------------------------------------------------------------------


def test_headers_are_the_canonical_columns(portfolio: Portfolio) -> None:
    assert list(CUSTOMER_COLUMNS) == _canonical_columns("customers")
    assert list(INVOICE_COLUMNS) == _canonical_columns("invoices")
    assert list(PAYMENT_COLUMNS) == _canonical_columns("payments")
    assert portfolio.customers.columns == list(CUSTOMER_COLUMNS)
    assert portfolio.documents.columns == list(INVOICE_COLUMNS)
    assert portfolio.payments.columns == list(PAYMENT_COLUMNS)
    # ... and each one maps onto the importer's canonical schema.
    renamed = {"amount": "amount_minor", "credit_limit": "credit_limit_minor"}
    for columns, schema in (
        (CUSTOMER_COLUMNS, CUSTOMER_SCHEMA),
        (INVOICE_COLUMNS, DOCUMENT_SCHEMA),
        (PAYMENT_COLUMNS, PAYMENT_SCHEMA),
    ):
        assert {renamed.get(c, c) for c in columns} <= set(schema)


def test_counts_and_totals_match_the_files(portfolio: Portfolio) -> None:
    s = portfolio.summary
    assert s.customers == portfolio.customers.height == 400
    assert s.invoices == portfolio.invoices.height == 20_000
    assert s.credit_notes == portfolio.credit_notes.height
    assert s.payments == portfolio.payments.height
    assert s.unreferenced_payments == portfolio.payments["invoice_number"].null_count()
    assert s.disputed_invoices == (portfolio.invoices["disputed"] == "true").sum()
    assert sum(s.segments.values()) == s.customers
    assert set(s.segments) == set(SEGMENTS)

    def total(frame: pl.DataFrame) -> Decimal:
        return sum((Decimal(a) for a in frame["amount"]), Decimal(0))

    assert s.total_invoiced == total(portfolio.invoices)
    assert s.total_credited == total(portfolio.credit_notes)
    assert s.total_paid == total(portfolio.payments)
    assert s.outstanding == s.total_invoiced - s.total_credited - s.total_paid > 0
    assert s.start == dt.date(2023, 7, 1) and s.end == END
    assert {p.name for p in s.files.values()} == {
        "customers.csv",
        "invoices.csv",
        "payments.csv",
    }


def test_proportions(portfolio: Portfolio) -> None:
    s = portfolio.summary
    documents = s.invoices + s.credit_notes
    assert 0.02 < s.credit_notes / documents < 0.04
    assert 0.015 < s.disputed_invoices / s.invoices < 0.035
    assert 0.02 < s.unreferenced_payments / s.payments < 0.04
    paid_invoices = portfolio.payments["invoice_number"].drop_nulls().n_unique()
    assert 0.03 < s.split_invoices / paid_invoices < 0.07
    assert 0 < s.open_invoices < s.invoices
    customers = portfolio.customers
    assert (customers["country"] == "FR").mean() > 0.8
    assert (customers["is_consumer"] == "true").sum() < 0.05 * customers.height
    assert (customers["contact_language"] == "fr").mean() > 0.8
    assert customers["customer_id"].n_unique() == customers.height


def test_zero_invoices_writes_headers_only(tmp_path: Path) -> None:
    p = _generate(tmp_path, customers=5, invoices=0)
    assert p.summary.invoices == p.summary.payments == p.summary.credit_notes == 0
    assert (tmp_path / "invoices.csv").read_text() == ",".join(INVOICE_COLUMNS) + "\n"
    assert (tmp_path / "payments.csv").read_text() == ",".join(PAYMENT_COLUMNS) + "\n"
    assert p.customers.height == 5


@pytest.mark.parametrize(
    "kwargs",
    [{"customers": 0}, {"invoices": -1}, {"seed": -1}, {"months": 0}, {"chunk_size": 0}],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        _generate(tmp_path, **kwargs)


# -- customers ---------------------------------------------------------------------------


def test_identifiers_are_valid(portfolio: Portfolio) -> None:
    customers = portfolio.customers
    french = customers.filter(pl.col("siren").is_not_null())
    assert french.height > 0.8 * customers.height
    for siren, siret, vat in french.select("siren", "siret", "vat_number").iter_rows():
        assert fr_siren.is_valid(siren), siren
        assert fr_siret.is_valid(siret) and siret[:9] == siren, siret
        assert fr_tva.is_valid(vat) and vat == f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"
    assert french["siren"].n_unique() == french.height
    assert set(french["country"]) == {"FR"}
    assert (french["is_consumer"] == "false").all()

    foreign = customers.filter(pl.col("country") != "FR")
    assert foreign.height > 0
    assert foreign["siren"].null_count() == foreign["siret"].null_count() == foreign.height
    for country, vat in foreign.select("country", "vat_number").iter_rows():
        assert vat.startswith(country) and eu_vat.is_valid(vat), vat

    consumers = customers.filter(pl.col("is_consumer") == "true")
    assert consumers["siren"].null_count() == consumers["vat_number"].null_count()
    assert consumers["siren"].null_count() == consumers.height


def test_customer_fields(portfolio: Portfolio) -> None:
    c = portfolio.customers
    assert set(c["currency"]) == {"EUR"}
    assert set(c["payment_terms"]) == {
        "30 days net",
        "45 days end of month",
        "60 days net",
        "30 days end of month",
    }
    assert set(c["segment"]) == set(SEGMENTS)
    assert set(c["country"]) <= {"FR", "BE", "DE", "ES", "IT"}
    assert set(c["contact_language"]) == {"fr", "en"}
    for column in ("deposit_required", "retention_of_title", "is_consumer"):
        assert set(c[column]) <= {"true", "false"}
    rates = c["penalty_rate"].drop_nulls()
    assert 0 < rates.len() < 0.3 * c.height
    assert all(AMOUNT.match(r) for r in rates)
    assert all(AMOUNT.match(v) and Decimal(v) >= 500 for v in c["credit_limit"])
    assert all(Decimal(v) % 500 == 0 for v in c["credit_limit"])  # round amounts
    assert c["account_owner"].n_unique() <= 6 and c["collector"].n_unique() <= 4
    assert all(re.fullmatch(r"[a-z0-9.-]+@[a-z0-9.-]+\.[a-z]+", e) for e in c["contact_email"])
    french_phones = c.filter(pl.col("country") == "FR")["contact_phone"]
    assert all(re.fullmatch(r"0[1-9]( \d\d){4}", p) for p in french_phones)
    companies = c.filter((pl.col("country") == "FR") & (pl.col("is_consumer") == "false"))
    forms = ("SAS", "SARL", "SA", "EURL", "SASU", "SNC", "SCOP", "SELARL")
    assert all(n.startswith("SCI ") or n.rsplit(" ", 1)[1] in forms for n in companies["name"])
    assert c["name"].n_unique() > 0.95 * c.height


def test_credit_limit_grows_with_the_customer(portfolio: Portfolio) -> None:
    volume = portfolio.invoices.group_by("customer_id").agg(
        _as_minor("amount").sum().alias("invoiced")
    )
    c = portfolio.customers.join(volume, on="customer_id").with_columns(
        _as_minor("credit_limit").alias("limit")
    )
    big = c.filter(pl.col("invoiced") >= pl.col("invoiced").quantile(0.9))
    small = c.filter(pl.col("invoiced") <= pl.col("invoiced").quantile(0.5))
    assert big["limit"].median() > 5 * small["limit"].median()


# -- invoices ----------------------------------------------------------------------------


def test_amounts_have_two_decimals_and_are_positive(any_portfolio: Portfolio) -> None:
    for frame in (any_portfolio.documents, any_portfolio.payments):
        assert frame["amount"].str.contains(r"^\d+\.\d{2}$").all()
        assert (frame["amount"].cast(pl.Decimal(20, 2)) > 0).all()
        assert set(frame["currency"]) == {"EUR"}


def test_invoice_fields(any_portfolio: Portfolio) -> None:
    docs = any_portfolio.documents
    assert docs["invoice_number"].n_unique() == docs.height
    invoices = any_portfolio.invoices
    assert invoices["invoice_number"].str.contains(r"^F20\d\d-\d{7}$").all()
    assert any_portfolio.credit_notes["invoice_number"].str.contains(r"^A20\d\d-\d{7}$").all()
    assert docs["paid_date"].null_count() == docs.height
    assert set(docs["disputed"]) <= {"true", "false"}
    assert set(docs["channel"]) <= {"paper", "electronic"}
    assert invoices["applies_to"].null_count() == invoices.height
    names = any_portfolio.customers.select("customer_id", pl.col("name").alias("customer_name"))
    assert docs.join(names, on=["customer_id", "customer_name"]).height == docs.height
    # the numbering follows the issue dates, and the file is sorted by date
    assert docs["issue_date"].is_sorted()
    first = invoices.group_by(pl.col("issue_date").str.slice(0, 4).alias("year")).agg(
        pl.col("invoice_number").first()
    )
    assert first["invoice_number"].str.ends_with("-0000001").all()


def test_due_dates_follow_the_payment_terms(portfolio: Portfolio) -> None:
    terms = portfolio.customers.select("customer_id", "payment_terms")
    inv = portfolio.invoices.join(terms, on="customer_id").with_columns(
        pl.col("issue_date", "due_date").str.to_date()
    )
    days = pl.col("payment_terms").str.extract(r"^(\d+)").cast(pl.Int64)
    shifted = pl.col("issue_date") + pl.duration(days=days)
    expected = (
        pl.when(pl.col("payment_terms").str.ends_with("end of month"))
        .then(shifted.dt.month_end())
        .otherwise(shifted)
    )
    assert (inv["due_date"] == inv.select(expected.alias("x"))["x"]).all()


def test_amounts_are_heavy_tailed(portfolio: Portfolio) -> None:
    amounts = portfolio.invoices["amount"].cast(pl.Float64)
    assert amounts.mean() > 1.3 * amounts.median()
    assert amounts.max() > 30 * amounts.median()
    counts = portfolio.invoices.group_by("customer_id").len()["len"].sort(descending=True)
    top = counts.head(max(1, len(counts) // 10)).sum()
    assert top > 0.3 * counts.sum()  # the biggest 10% of customers issue a third or more


def test_credit_notes_reference_an_invoice_of_the_same_customer(
    any_portfolio: Portfolio,
) -> None:
    cn = any_portfolio.credit_notes
    assert cn.height > 0
    targets = any_portfolio.invoices.select(
        pl.col("invoice_number").alias("applies_to"),
        pl.col("customer_id").alias("invoice_customer"),
        pl.col("amount").alias("invoice_amount"),
        pl.col("issue_date").alias("invoice_date"),
        pl.col("reference").alias("invoice_reference"),
    )
    joined = cn.join(targets, on="applies_to", how="left")
    assert joined["invoice_customer"].null_count() == 0
    assert (joined["customer_id"] == joined["invoice_customer"]).all()
    assert (
        joined["amount"].cast(pl.Decimal(20, 2)) <= joined["invoice_amount"].cast(pl.Decimal(20, 2))
    ).all()
    assert (joined["issue_date"] >= joined["invoice_date"]).all()
    assert joined["reference"].eq_missing(joined["invoice_reference"]).all()
    credited = cn.group_by("applies_to").agg(_as_minor("amount").sum())
    assert credited.height == cn.height  # at most one credit note per invoice


# -- dates and payments ------------------------------------------------------------------


def test_nothing_dated_after_the_end(any_portfolio: Portfolio) -> None:
    end = any_portfolio.summary.end.isoformat()
    start = any_portfolio.summary.start.isoformat()
    docs = any_portfolio.documents
    assert docs["issue_date"].max() <= end
    assert docs["issue_date"].min() >= start
    assert any_portfolio.payments["date"].max() <= end
    assert (docs["due_date"] >= docs["issue_date"]).all()
    # due dates may be later: the recent invoices are not due yet
    for column in ("issue_date", "due_date"):
        assert docs[column].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()


def test_payments_never_exceed_what_is_due(any_portfolio: Portfolio) -> None:
    payments = any_portfolio.payments
    assert payments["payment_id"].n_unique() == payments.height
    assert payments["payment_id"].str.contains(r"^P20\d\d-\d{7}$").all()
    assert payments["date"].is_sorted()
    assert set(payments["method"]) <= {"transfer", "cheque", "direct_debit", "card"}
    credited = any_portfolio.credit_notes.group_by(pl.col("applies_to").alias("invoice_number"))
    credited = credited.agg(_as_minor("amount").sum().alias("credited"))
    paid = payments.filter(pl.col("invoice_number").is_not_null()).group_by("invoice_number")
    paid = paid.agg(
        _as_minor("amount").sum().alias("paid"),
        pl.col("date").min().alias("first_payment"),
        pl.col("customer_id").unique().alias("payers"),
        pl.len().alias("count"),
    )
    inv = (
        any_portfolio.invoices.select(
            "invoice_number", "customer_id", "issue_date", _as_minor("amount").alias("amount")
        )
        .join(credited, on="invoice_number", how="left")
        .join(paid, on="invoice_number", how="inner")
        .with_columns(pl.col("credited").fill_null(0))
    )
    assert inv.height == paid.height  # every referenced invoice exists
    assert (inv["paid"] <= inv["amount"] - inv["credited"]).all()
    assert (inv["first_payment"] >= inv["issue_date"]).all()
    assert (inv["payers"].list.len() == 1).all()
    assert (inv["payers"].list.first() == inv["customer_id"]).all()
    assert inv["count"].max() == 2
    # with a payment on each instalment, the invoice is settled exactly
    split = inv.filter(pl.col("count") == 2)
    assert (split["paid"] == split["amount"] - split["credited"]).all()
    # an unreferenced payment is from a known customer
    unreferenced = payments.filter(pl.col("invoice_number").is_null())
    assert set(unreferenced["customer_id"]) <= set(any_portfolio.customers["customer_id"])


def test_disputed_invoices_are_mostly_open(portfolio: Portfolio) -> None:
    referenced = portfolio.payments["invoice_number"].drop_nulls().unique().implode()
    inv = portfolio.invoices.with_columns(paid=pl.col("invoice_number").is_in(referenced))
    old = inv.filter(pl.col("issue_date") < "2025-01-01")
    disputed = old.filter(pl.col("disputed") == "true")
    assert disputed.height > 50
    assert disputed["paid"].mean() < 0.4
    assert old.filter(pl.col("disputed") == "false")["paid"].mean() > 0.85


def _days_late(p: Portfolio) -> pl.DataFrame:
    """Per paid invoice: days between the due date and the last payment, with the segment."""
    last = (
        p.payments.filter(pl.col("invoice_number").is_not_null())
        .group_by("invoice_number")
        .agg(pl.col("date").max())
    )
    return (
        p.invoices.join(last, on="invoice_number")
        .join(p.customers.select("customer_id", "segment"), on="customer_id")
        .with_columns(
            late=(pl.col("date").str.to_date() - pl.col("due_date").str.to_date()).dt.total_days(),
            due_month=pl.col("due_date").str.slice(5, 2).cast(pl.Int64),
        )
    )


def test_segments_pay_differently(portfolio: Portfolio) -> None:
    late = _days_late(portfolio).filter(pl.col("disputed") == "false")
    mean = dict(late.group_by("segment").agg(pl.col("late").mean()).iter_rows())
    assert mean["prompt"] < 3
    assert mean["late"] > mean["prompt"] + 20
    assert 15 <= late.filter(pl.col("segment") == "late")["late"].median() <= 60
    seasonal = late.filter(pl.col("segment") == "seasonal")
    summer = seasonal.filter(pl.col("due_month").is_in([7, 12]))["late"].mean()
    spring = seasonal.filter(pl.col("due_month").is_in([3, 4, 5]))["late"].mean()
    assert summer > spring + 10


def test_deteriorating_customers_end_up_in_default(portfolio: Portfolio) -> None:
    referenced = portfolio.payments["invoice_number"].drop_nulls().unique().implode()
    inv = portfolio.invoices.join(
        portfolio.customers.select("customer_id", "segment"), on="customer_id"
    ).with_columns(paid=pl.col("invoice_number").is_in(referenced))
    # invoices due in the six months before the end date
    window = inv.filter(pl.col("due_date").is_between(pl.lit("2024-12-01"), pl.lit("2025-05-31")))
    open_share = dict(
        window.group_by("segment").agg((~pl.col("paid")).mean().alias("open")).iter_rows()
    )
    assert open_share["deteriorating"] > 3 * open_share["prompt"]
    # and their delays grow: the payments of their last year are later than the first
    late = _days_late(portfolio).filter(pl.col("segment") == "deteriorating")
    early_delay = late.filter(pl.col("due_date") < "2024-01-01")["late"].mean()
    recent_delay = late.filter(pl.col("due_date") >= "2024-10-01")["late"].mean()
    assert recent_delay > early_delay + 5


# -- CLI ---------------------------------------------------------------------------------


def _cli_app() -> typer.Typer:
    """The real `encours` app, or, while another command module is still missing, an app
    with only `generate` registered (same options, same code)."""
    try:
        from encours.cli.app import app
    except ImportError:
        from encours.cli import generate_cmd

        app = typer.Typer()

        @app.callback()
        def _root() -> None:
            pass

        generate_cmd.register(app)
    return app


def test_cli_json(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["generate", "--customers", "30", "--invoices", "600", "--seed", "3"]
    args += ["--out", str(out), "--end", "2025-03-31", "--months", "6", "--json"]
    result = CliRunner().invoke(_cli_app(), args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["customers"] == 30 and payload["invoices"] == 600
    assert payload["end"] == "2025-03-31" and payload["start"] == "2024-10-01"
    assert Decimal(payload["total_invoiced"]) > 0
    assert _read(out / "invoices.csv").filter(pl.col("document_type") == "invoice").height == 600
    assert _read(out / "payments.csv").height == payload["payments"]
    # same arguments through the library: same files
    again = generate_portfolio(tmp_path / "lib", 30, 600, 3, dt.date(2025, 3, 31), months=6)
    assert again.to_dict()["total_paid"] == payload["total_paid"]
    assert (tmp_path / "lib" / "payments.csv").read_bytes() == (out / "payments.csv").read_bytes()


def test_cli_rich_summary_and_bad_end(tmp_path: Path) -> None:
    app = _cli_app()
    args = ["generate", "--customers", "10", "--invoices", "100", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--end", "2025-01-31"])
    assert result.exit_code == 0, result.output
    assert "100" in result.stdout and "customers.csv" in result.stdout
    bad = CliRunner().invoke(app, [*args, "--end", "31/01/2025"])
    assert bad.exit_code == 2
