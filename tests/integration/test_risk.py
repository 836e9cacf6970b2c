"""Risk module on a real database (SQLite, and PostgreSQL in CI): onboarding, statements,
assessments and their history, reviews due, limit requests and approval, ECL matrix."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from encours import i18n
from encours.imports.canonical import DOCUMENT_SCHEMA, PAYMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.risk import classes, ecl, limits, onboarding, statements
from encours.store.db import unit_of_work
from encours.store.risk_schema import RiskAssessment
from encours.store.schema import AuditEntry, Customer

D = dt.date
CUSTOMERS = Customer.__table__


@pytest.fixture(autouse=True)
def _english() -> None:
    i18n.set_language("en")


def invoice(number: str, customer: str, issue: dt.date, due: dt.date, amount_minor: int) -> dict:
    return {"invoice_number": number, "customer_id": customer, "customer_name": customer,
            "issue_date": issue, "due_date": due, "amount_minor": amount_minor,
            "currency": "EUR"}  # fmt: skip


def payment(pid: str, customer: str, day: dt.date, amount_minor: int, number: str) -> dict:
    return {"payment_id": pid, "customer_id": customer, "date": day,
            "amount_minor": amount_minor, "currency": "EUR", "invoice_number": number}  # fmt: skip


def load(url: str, kind: str, rows: list[dict]) -> None:
    frame = pl.DataFrame([{"_line": i + 2, **r} for i, r in enumerate(rows)])
    if kind == "invoices":
        batch = CanonicalBatch(source="i.csv", documents=conform(frame, DOCUMENT_SCHEMA))
    else:
        batch = CanonicalBatch(source="p.csv", payments=conform(frame, PAYMENT_SCHEMA))
    with unit_of_work(url) as conn:
        load_batch(conn, batch, kind=kind)


def customer(url: str, code: str) -> dict:
    with unit_of_work(url) as conn:
        return dict(conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.code == code))
                    .mappings().one())  # fmt: skip


def audit_rows(url: str, action: str) -> list[dict]:
    table = AuditEntry.__table__
    with unit_of_work(url) as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(table).where(table.c.action == action).order_by(table.c.id)
            ).mappings()
        ]


# --- onboarding ---------------------------------------------------------------------------


def test_onboarding_checks_identifiers(db_url: str) -> None:
    with pytest.raises(onboarding.OnboardingError) as info, unit_of_work(db_url) as conn:
        onboarding.onboard_customer(
            conn,
            "N1",
            "Bad SAS",
            siren="123456789",
            checklist=["contract", "nonsense"],
            as_of=D(2024, 6, 30),
        )
    problems = " ".join(info.value.problems)
    assert "SIREN" in problems and "invalid checksum" in problems
    assert "nonsense" in problems
    with unit_of_work(db_url) as conn:
        assert conn.execute(select(CUSTOMERS)).first() is None  # nothing written


def test_onboarding_sound_customer(db_url: str) -> None:
    with unit_of_work(db_url) as conn:
        result = onboarding.onboard_customer(
            conn, "N2", "Métallerie Agripro SASU", siren="844 903 203",
            vat_number="FR02844903203", legal_form="SASU", created=D(2010, 3, 1),
            sector="62.01Z", country="FR",
            checklist=["contract", "payment_terms", "penalty_clause", "retention_of_title"],
            as_of=D(2024, 6, 30), actor="alice",
        )  # fmt: skip
    assert result.risk_class == "B"
    assert result.credit_limit == Decimal("30000.00")  # class B initial limit
    assert result.review_date == D(2025, 6, 30)
    assert not result.deposit_required and not result.prepayment_required
    row = customer(db_url, "N2")
    assert (row["siren"], row["credit_limit_minor"], row["retention_of_title"]) == (
        "844903203",
        30000_00,
        True,
    )
    assert [a["entity_key"] for a in audit_rows(db_url, "onboard")] == ["N2"]
    assert audit_rows(db_url, "create")[0]["actor"] == "alice"


def test_onboarding_high_risk_customer_gets_prepayment(db_url: str) -> None:
    with unit_of_work(db_url) as conn:
        result = onboarding.onboard_customer(
            conn, "N3", "Bâtisseurs Express SARL", siren="844903203", created=D(2023, 9, 1),
            sector="F", country="FR", checklist=["payment_terms"], as_of=D(2024, 6, 30),
        )  # fmt: skip
    # B + young company + high-risk sector + contract and penalty clause missing -> E
    assert result.risk_class == "E"
    assert result.deposit_required and result.prepayment_required
    assert result.credit_limit == 0
    codes = [r["code"] for r in result.reasons]
    assert codes == ["young_company", "high_risk_sector", "checklist_missing", "prepayment"]
    assert customer(db_url, "N3")["deposit_required"] is True


def test_onboard_cli(db_url: str) -> None:
    from encours.cli.app import app

    args = [
        "--db",
        db_url,
        "risk",
        "onboard",
        "N4",
        "--name",
        "Alpha SAS",
        "--siren",
        "844903203",
        "--created",
        "2001-01-01",
        "--checklist",
        "contract,payment_terms,penalty_clause",
        "--as-of",
        "2024-06-30",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["risk_class"] == "B"
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "already onboarded" in again.output


# --- statements -------------------------------------------------------------------------


def test_statements_import_rejects_with_line_and_column(db_url: str, tmp_path: Path) -> None:
    load(db_url, "invoices", [invoice("F1", "C1", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id;fiscal_year;revenue;equity\n"
                   "C1;2023;1000,50;abc\n"
                   "ZZ;2023;1;1\n"
                   "C1;20x3;1;1\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(statements.StatementsRejected) as info, unit_of_work(db_url) as conn:
        statements.import_statements(conn, bad)
    found = [(e.line, e.column) for e in info.value.errors]
    assert found == [(2, "equity"), (3, "customer_id"), (4, "fiscal_year")]


def test_statements_import_and_partial_scores(db_url: str, tmp_path: Path) -> None:
    load(db_url, "invoices", [invoice("F1", "C1", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    good = tmp_path / "st.csv"
    good.write_text("customer_id,fiscal_year,total_assets,current_assets,current_liabilities,"
                    "retained_earnings,ebit,equity,total_liabilities\n"
                    "C1,2023,1000,500,300,150,80,400,600\n"
                    "C1,2022,1000,500,300,,80,400,600\n", encoding="utf-8")  # fmt: skip
    with unit_of_work(db_url) as conn:
        report = statements.import_statements(conn, good)
        assert (report.inserted, report.replaced) == (2, 0)
        report = statements.import_statements(conn, good)  # replaces
        assert (report.inserted, report.replaced) == (0, 2)
        evaluations = statements.customer_statements(conn, customer(db_url, "C1")["id"])
    latest, older = evaluations
    assert latest.altman.rounded() == Decimal("3.0386") and latest.altman.zone == "safe"
    assert latest.conan_holder.score is None and "ebe" in latest.conan_holder.missing
    assert older.altman.score is None and older.altman.missing == ("retained_earnings",)


# --- assessments, history, reviews --------------------------------------------------------


def test_assess_keeps_history_and_class_changes(db_url: str) -> None:
    load(db_url, "invoices", [
        invoice("F1", "GOOD", D(2024, 1, 1), D(2024, 1, 31), 1000_00),
        invoice("F2", "GOOD", D(2024, 3, 1), D(2024, 3, 31), 1000_00),
        invoice("F3", "BAD", D(2023, 12, 1), D(2023, 12, 31), 5000_00),
    ])  # fmt: skip
    load(
        db_url,
        "payments",
        [
            payment("P1", "GOOD", D(2024, 1, 30), 1000_00, "F1"),
            payment("P2", "GOOD", D(2024, 3, 29), 1000_00, "F2"),
        ],
    )
    with unit_of_work(db_url) as conn:
        statements.save_statement(conn, "GOOD", 2023, {
            "total_assets": 1000, "current_assets": 500, "current_liabilities": 300,
            "retained_earnings": 150, "ebit": 80, "equity": 400, "total_liabilities": 600,
        }, period_end=D(2023, 12, 31))  # fmt: skip
        first = classes.assess(conn, D(2024, 4, 30))
    by_code = {r["customer_id"]: r for r in first.iter_rows(named=True)}
    good, bad = customer(db_url, "GOOD")["id"], customer(db_url, "BAD")["id"]
    assert by_code[good]["risk_class"] == "A"
    assert by_code[good]["altman_zone"] == "safe"
    assert by_code[bad]["risk_class"] in ("D", "E")  # 121 days overdue, never paid
    reasons = classes.reasons_text(json.loads(by_code[bad]["reasons"]))
    assert "Oldest overdue invoice 121 days past due" in reasons
    assert "100 % of the invoices of the last 12 months paid late" in reasons

    with unit_of_work(db_url) as conn:
        conn.execute(update(CUSTOMERS).where(CUSTOMERS.c.id == good).values(in_insolvency=True))
        classes.assess(conn, D(2024, 5, 31))
        classes.assess(conn, D(2024, 5, 31))  # the same day again replaces, no duplicate
        hist = classes.history(conn, good)
    assert [(h["as_of"], h["risk_class"]) for h in hist] == [
        (D(2024, 4, 30), "A"),
        (D(2024, 5, 31), "E"),
    ]
    assert hist[1]["previous_class"] == "A"
    assert hist[1]["review_date"] == D(2024, 6, 30)  # class E: reviewed within a month
    assert [r["code"] for r in hist[1]["reasons"]][:2] == ["class_changed", "insolvency"]


def test_reviews_due(db_url: str) -> None:
    load(db_url, "invoices", [invoice(f"F{c}", c, D(2024, 1, 1), D(2024, 1, 31), 100_00)
                              for c in ("R1", "R2", "R3")])  # fmt: skip
    ids = {c: customer(db_url, c)["id"] for c in ("R1", "R2", "R3")}
    with unit_of_work(db_url) as conn:
        classes.store_assessment(conn, ids["R1"], D(2024, 1, 1), "E", [], source="test")
        classes.store_assessment(conn, ids["R2"], D(2024, 6, 1), "A", [], source="test")
        due = classes.reviews_due(conn, D(2024, 6, 30))
    assert due["code"].to_list() == ["R1", "R3"]  # R3 never assessed
    assert due.row(0, named=True)["review_date"] == D(2024, 2, 1)
    with unit_of_work(db_url) as conn:
        assert classes.record_review(conn, ids["R1"], D(2024, 6, 30), "bob") == D(2024, 7, 31)
        assert classes.reviews_due(conn, D(2024, 6, 30))["code"].to_list() == ["R3"]
    assert audit_rows(db_url, "review")[0]["after"]["review_date"] == "2024-07-31"

    from encours.cli.app import app

    result = CliRunner().invoke(app, ["--db", db_url, "risk", "review", "--due", "--as-of",
                                      "2024-06-30", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [r["code"] for r in json.loads(result.output)] == ["R3"]


# --- limits -------------------------------------------------------------------------------


def test_limit_request_approve_changes_the_limit_with_audit(db_url: str) -> None:
    load(db_url, "invoices", [invoice("F1", "L1", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    with unit_of_work(db_url) as conn:
        rec = limits.recommend_limit(conn, "L1", D(2024, 6, 30))
        request_id = limits.request_limit(
            conn, "L1", Decimal("25000"), actor="sales", as_of=D(2024, 6, 30), reason="new contract"
        )
    assert rec.risk_class == "C" and rec.recommended <= Decimal(15000)
    assert customer(db_url, "L1")["credit_limit_minor"] is None
    with pytest.raises(limits.LimitError, match="four-eyes"), unit_of_work(db_url) as conn:
        limits.approve_limit(conn, request_id, actor="sales")
    with pytest.raises(limits.LimitError, match="already pending"), unit_of_work(db_url) as conn:
        limits.request_limit(conn, "L1", Decimal(1), actor="sales", as_of=D(2024, 6, 30))
    with unit_of_work(db_url) as conn:
        assert limits.approve_limit(conn, request_id, actor="credit.manager") == 25000_00
    assert customer(db_url, "L1")["credit_limit_minor"] == 25000_00
    change = [a for a in audit_rows(db_url, "update") if a["entity"] == "customer"][-1]
    assert change["actor"] == "credit.manager"
    assert change["before"] == {"credit_limit_minor": None}
    assert change["after"]["credit_limit_minor"] == 25000_00
    assert [a["actor"] for a in audit_rows(db_url, "limit_request")] == ["sales"]
    assert [a["actor"] for a in audit_rows(db_url, "limit_approved")] == ["credit.manager"]
    with pytest.raises(limits.LimitError, match="already approved"), unit_of_work(db_url) as conn:
        limits.reject_limit(conn, request_id, actor="credit.manager")


def test_a_request_can_remove_the_limit(db_url: str) -> None:
    """`none` (CLI) / amount None: approved, the customer has no credit limit any more."""
    from encours.cli.app import app

    load(db_url, "invoices", [invoice("F1", "L3", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    with unit_of_work(db_url) as conn:
        first = limits.request_limit(
            conn, "L3", Decimal("8000"), actor="sales", as_of=D(2024, 6, 30)
        )
        assert limits.approve_limit(conn, first, actor="cm") == 8000_00
    run = CliRunner().invoke
    result = run(app, ["--db", db_url, "risk", "limit", "request", "L3", "none", "--by", "sales"])
    assert result.exit_code == 0, result.output
    listed = json.loads(run(app, ["--db", db_url, "risk", "limit", "list", "--json"]).output)
    assert [(r["customer"], r["requested"]) for r in listed] == [("L3", None)]
    with unit_of_work(db_url) as conn:
        assert limits.approve_limit(conn, listed[0]["id"], actor="cm") is None
    assert customer(db_url, "L3")["credit_limit_minor"] is None
    change = [a for a in audit_rows(db_url, "update") if a["entity"] == "customer"][-1]
    assert change["before"] == {"credit_limit_minor": 8000_00}
    assert change["after"]["credit_limit_minor"] is None


def test_limit_cli_request_reject(db_url: str) -> None:
    from encours.cli.app import app

    load(db_url, "invoices", [invoice("F1", "L2", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    run = CliRunner().invoke
    assert run(app, ["--db", db_url, "risk", "limit", "request", "L2", "5000", "--by",
                     "sales"]).exit_code == 0  # fmt: skip
    listed = run(app, ["--db", db_url, "risk", "limit", "list", "--json"])
    request_id = json.loads(listed.output)[0]["id"]
    result = run(app, ["--db", db_url, "risk", "limit", "reject", str(request_id), "--by", "cm"])
    assert result.exit_code == 0, result.output
    assert customer(db_url, "L2")["credit_limit_minor"] is None
    assert run(app, ["--db", db_url, "risk", "limit", "recommend", "NOPE"]).exit_code == 1


# --- expected credit loss -----------------------------------------------------------------


@pytest.fixture
def ecl_ledger(db_url: str) -> str:
    load(db_url, "invoices", [
        invoice("F1", "C1", D(2024, 1, 10), D(2024, 2, 15), 1000_00),
        invoice("F2", "C2", D(2024, 1, 5), D(2024, 1, 20), 500_00),
        invoice("F3", "C1", D(2024, 2, 20), D(2024, 3, 20), 800_00),
        invoice("F4", "C2", D(2024, 3, 15), D(2024, 4, 14), 1000_00),
    ])  # fmt: skip
    load(db_url, "payments", [
        payment("P1", "C1", D(2024, 2, 20), 600_00, "F1"),
        payment("P2", "C2", D(2024, 2, 10), 250_00, "F2"),
        payment("P3", "C1", D(2024, 3, 25), 800_00, "F3"),
    ])  # fmt: skip
    return db_url


def test_ecl_provision_matrix_by_hand(ecl_ledger: str) -> None:
    from encours.domain.aging import parse_buckets

    with unit_of_work(ecl_ledger) as conn:
        (matrix,) = ecl.expected_credit_loss(conn, D(2024, 3, 31), months=2,
                                             buckets=parse_buckets("1-30,31+"))  # fmt: skip
    # Month-ends 31 Jan, 29 Feb, 31 Mar.
    # Not due: at 31 Jan F1 1000 (400 still owed at 29 Feb); at 29 Feb F3 800 (paid by
    #   31 Mar) -> roll 400 / 1800 = 0.222222
    # 1-30: at 31 Jan F2 500 (250 owed at 29 Feb); at 29 Feb F1 400 (400 owed at 31 Mar)
    #   -> roll 650 / 900 = 0.722222
    # Loss rates: 31+ = 1; 1-30 = 0.722222; not due = 0.222222 x 0.722222 = 0.160494
    # As of 31 Mar: not due F4 1000, 1-30 nothing, 31+ F1 400 + F2 250 = 650
    assert matrix.month_ends == [D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31)]
    rows = {r["bucket"]: r for r in matrix.rows}
    assert rows["not due"]["roll_rate"] == Decimal("0.222222")
    assert rows["1-30"]["roll_rate"] == Decimal("0.722222")
    assert [rows[b]["loss_rate"] for b in ("not due", "1-30", "31+")] == [
        Decimal("0.160494"),
        Decimal("0.722222"),
        Decimal("1"),
    ]
    assert [rows[b]["amount"] for b in ("not due", "1-30", "31+")] == [
        Decimal("1000.00"),
        Decimal("0.00"),
        Decimal("650.00"),
    ]
    assert rows["not due"]["provision"] == Decimal("160.49")
    assert matrix.total_provision == Decimal("810.49")

    # C2 doubtful at 50 %: out of the matrix, provided individually on its 1250 open
    with unit_of_work(ecl_ledger) as conn:
        ecl.set_doubtful(conn, "C2", Decimal(50), "cm")
        (matrix,) = ecl.expected_credit_loss(conn, D(2024, 3, 31), months=2,
                                             buckets=parse_buckets("1-30,31+"))  # fmt: skip
    assert matrix.matrix_provision == Decimal("400.00")  # F1 400 in 31+
    assert matrix.individual == [{"customer": "C2", "open": Decimal("1250.00"),
                                  "rate_percent": Decimal("50"),
                                  "provision": Decimal("625.00")}]  # fmt: skip
    assert matrix.total_provision == Decimal("1025.00")


def test_ecl_cli_json(ecl_ledger: str) -> None:
    from encours.cli.app import app

    result = CliRunner().invoke(app, ["--db", ecl_ledger, "risk", "ecl", "--as-of",
                                      "2024-03-31", "--months", "2", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (payload,) = json.loads(result.output)
    assert payload["currency"] == "EUR"
    assert [r["bucket"] for r in payload["matrix"]][:2] == ["not due", "1-30"]


def test_assess_cli_and_table(db_url: str) -> None:
    from encours.cli.app import app

    load(db_url, "invoices", [invoice("F1", "A1", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    result = CliRunner().invoke(app, ["--db", db_url, "risk", "assess", "--as-of", "2024-06-30",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["customers"] == 1
    with unit_of_work(db_url) as conn:
        assert conn.execute(select(RiskAssessment.risk_class)).scalar_one() in "ABCDE"


def test_broken_promises_are_counted_when_the_dunning_tables_exist(db_url: str) -> None:
    from sqlalchemy import text

    from encours.risk.behaviour import behaviour_features, promises_available

    load(db_url, "invoices", [invoice("F1", "P1", D(2024, 1, 1), D(2024, 1, 31), 100_00)])
    customer_id = customer(db_url, "P1")["id"]
    with unit_of_work(db_url) as conn:
        if not promises_available(conn):
            features = behaviour_features(conn, D(2024, 6, 30))
            assert features["broken_promises"].to_list() == [0.0]
            pytest.skip("no promises table in this build: counted as 0")
        for day, status in (
            (D(2024, 3, 1), "broken"),
            (D(2024, 4, 1), "broken"),
            (D(2024, 5, 1), "kept"),
            (D(2023, 1, 1), "broken"),
        ):
            conn.execute(
                text(
                    "INSERT INTO promises (customer_id, made_on, promised_date, amount_minor, "
                    "currency, grace_days, status, actor, created_at) VALUES (:c, :d, :d, 100, "
                    "'EUR', 3, :s, 'test', :now)"
                ),
                {"c": customer_id, "d": day, "s": status, "now": dt.datetime(2024, 1, 1)},
            )
        features = behaviour_features(conn, D(2024, 6, 30))
    assert features["broken_promises"].to_list() == [2.0]  # within 12 months
