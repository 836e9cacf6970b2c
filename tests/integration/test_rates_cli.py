"""`encours rates ...` and `encours penalties compute` through the CLI, on SQLite."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from encours.domain.penalties import half_year_start
from encours.store.db import dispose_all, unit_of_work
from encours.store.rates import (
    list_rates,
    load_rate_table,
    missing_current_rate_warning,
    seed_reference_rates,
    set_rate,
    shipped_rates,
)
from encours.store.schema import AuditEntry, ReferenceRate

WORKED_EXAMPLE = {
    "penalties": "428.79",
    "indemnity": "40.00",
    "days_late": 91,
    "periods": [
        {
            "start": "2024-06-01",
            "end": "2024-06-30",
            "days": 30,
            "principal": "12000.00",
            "rate": "14.50",
            "interest": "143.01",
        },
        {
            "start": "2024-07-01",
            "end": "2024-08-30",
            "days": 61,
            "principal": "12000.00",
            "rate": "14.25",
            "interest": "285.78",
        },
    ],
}


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    yield url
    dispose_all()


@pytest.fixture
def cli(db):
    from encours.cli.app import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["--db", db, "--lang", "en", *args])

    return run


def _flat(text: str) -> str:
    """Rich wraps long messages: compare on single-spaced text."""
    return " ".join(text.split())


def _audit_rows(db):
    audit = AuditEntry.__table__
    with unit_of_work(db) as conn:
        return conn.execute(select(audit).order_by(audit.c.id)).mappings().all()


# --- store ------------------------------------------------------------------------------


def test_seed_is_idempotent_and_automatic(db):
    with unit_of_work(db) as conn:
        table = load_rate_table(conn)  # empty table: seeded
        count = conn.execute(select(func.count()).select_from(ReferenceRate.__table__))
        assert count.scalar_one() == len(shipped_rates())
        assert seed_reference_rates(conn) == 0
    assert table.ecb_rate_for_half_year(dt.date(2025, 8, 1)) == Decimal("2.15")


def test_seed_adds_only_missing_rows_and_keeps_user_changes(db):
    with unit_of_work(db) as conn:
        set_rate(conn, "ecb", dt.date(2025, 6, 11), "2.20", actor="test")
        rates = ReferenceRate.__table__
        conn.execute(rates.delete().where(rates.c.valid_from == dt.date(2016, 3, 16)))
        assert seed_reference_rates(conn) == 1
        rows = {(r.kind, r.valid_from): r.rate for r in list_rates(conn)}
    assert rows[("ecb", dt.date(2025, 6, 11))] == Decimal("2.20")
    assert rows[("ecb", dt.date(2016, 3, 16))] == Decimal("0.00")


def test_set_rate_upserts_and_audits(db):
    with unit_of_work(db) as conn:
        set_rate(conn, "ecb", dt.date(2026, 7, 1), Decimal("2.15"), actor="alice")
        set_rate(conn, "ecb", dt.date(2026, 7, 1), Decimal("2.00"), actor="bob", note="ECB")
        rows = [r for r in list_rates(conn, "ecb") if r.valid_from == dt.date(2026, 7, 1)]
    assert [(r.rate, r.note) for r in rows] == [(Decimal("2.00"), "ECB")]
    first, second = _audit_rows(db)
    assert (first["actor"], first["action"], first["entity"], first["entity_key"]) == (
        "alice",
        "rate.set",
        "reference_rate",
        "ecb:2026-07-01",
    )
    assert first["before"] is None
    assert first["after"] == {"kind": "ecb", "valid_from": "2026-07-01", "rate": "2.15", "note": ""}
    assert second["before"]["rate"] == "2.15"
    assert second["after"]["rate"] == "2.00"
    assert second["actor"] == "bob"


# --- rates list / set -------------------------------------------------------------------


def test_rates_list_json_includes_shipped_rates(cli):
    result = cli("rates", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {"kind": "ecb", "valid_from": "2025-06-11", "rate": "2.15"}.items() <= next(
        r for r in rows if r["kind"] == "ecb" and r["valid_from"] == "2025-06-11"
    ).items()
    assert {"kind", "valid_from", "rate", "note"} == set(rows[0])
    assert any(r["kind"] == "legal_pro" and r["rate"] == "2.76" for r in rows)


def test_rates_list_table_and_warning(cli, db):
    result = cli("rates", "list")
    assert result.exit_code == 0, result.output
    assert "2025-06-11" in result.stdout and "2.15" in result.stdout
    with unit_of_work(db) as conn:
        expected = missing_current_rate_warning(load_rate_table(conn), dt.date.today())
    if expected is not None:  # the shipped table stops at 2025-06-11
        assert "has not been confirmed" in _flat(result.stderr)
        assert "encours rates set ecb" in _flat(result.stderr)
    assert "has not been" not in result.stdout


def test_rates_set_then_list(cli, db):
    reference_day = half_year_start(dt.date.today()).isoformat()
    result = cli("rates", "set", "ecb", reference_day, "2.15")
    assert result.exit_code == 0, result.output
    listed = cli("rates", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["rate"] for r in rows if r["valid_from"] == reference_day and r["kind"] == "ecb"] == [
        "2.15"
    ]
    assert "confirmed" not in listed.stderr  # the current half-year is now confirmed
    audit = _audit_rows(db)
    assert len(audit) == 1
    assert audit[0]["action"] == "rate.set"
    assert audit[0]["entity_key"] == f"ecb:{reference_day}"
    assert audit[0]["after"]["rate"] == "2.15"


def test_rates_set_legal_kinds(cli):
    assert cli("rates", "set", "legal", "2026-01-01", "6.67").exit_code == 0
    assert cli("rates", "set", "legal", "2026-01-01", "7.7", "--consumer").exit_code == 0
    rows = json.loads(cli("rates", "list", "--json").stdout)
    got = {(r["kind"], r["rate"]) for r in rows if r["valid_from"] == "2026-01-01"}
    assert got == {("legal_pro", "6.67"), ("legal_consumer", "7.7")}


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["ecb", "2026-13-01", "2.15"], 1, "FROM"),
        (["ecb", "2026-07-01", "abc"], 1, "RATE"),
        (["ecb", "2026-07-01", "150"], 1, "RATE"),
        (["--", "ecb", "2026-07-01", "-1"], 1, "RATE"),
        (["euribor", "2026-07-01", "2"], 2, "ecb or legal"),
        (["ecb", "2026-07-01", "2", "--consumer"], 2, "--consumer"),
    ],
)
def test_rates_set_bad_input(cli, db, args, code, needle):
    result = cli("rates", "set", *args)
    assert result.exit_code == code, result.output
    assert needle in _flat(result.stderr)
    assert _audit_rows(db) == []


# --- penalties compute ------------------------------------------------------------------


def test_penalties_compute_json_worked_example(cli):
    result = cli(
        "penalties",
        "compute",
        "--amount",
        "12000.00",
        "--due",
        "2024-05-31",
        "--payment",
        "2024-08-30:12000.00",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == WORKED_EXAMPLE


def test_penalties_compute_table(cli):
    result = cli(
        "penalties",
        "compute",
        "--amount",
        "12000.00",
        "--due",
        "2024-05-31",
        "--payment",
        "2024-08-30:6000.00",
        "--payment",
        "2024-08-30:6000.00",
    )
    assert result.exit_code == 0, result.output
    for text in ("143.01", "285.78", "428.79", "40.00", "91"):
        assert text in result.stdout


def test_penalties_compute_open_invoice_and_contract_rate(cli):
    # 5000 due 2025-06-15 at 5 % (floored at 3 x legal), open as of 2025-07-10: 34.21
    result = cli(
        "penalties",
        "compute",
        "--amount",
        "5000",
        "--due",
        "2025-06-15",
        "--rate",
        "5",
        "--as-of",
        "2025-07-10",
        "--json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["penalties"] == "34.21"
    assert [p["rate"] for p in payload["periods"]] == ["11.13", "8.28"]
    assert payload["periods"][0]["principal"] == "5000.00"


def test_penalties_compute_consumer(cli):
    result = cli(
        "penalties",
        "compute",
        "--amount",
        "12000.00",
        "--due",
        "2024-05-31",
        "--payment",
        "2024-08-30:12000.00",
        "--consumer",
        "--json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["penalties"], payload["indemnity"], payload["periods"]) == ("0.00", "0.00", [])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--amount", "douze", "--due", "2024-05-31"], "--amount"),
        (["--amount", "12000", "--due", "31/05/2024"], "--due"),
        (["--amount", "12000", "--due", "2024-05-31", "--payment", "2024-08-30"], "DATE:AMOUNT"),
        (["--amount", "12000", "--due", "2024-05-31", "--payment", "2024-08-30:x"], "--payment"),
        (["--amount", "12000", "--due", "2024-05-31", "--payment", "2024-02-30:1"], "--payment"),
        (["--amount", "12000", "--due", "2024-05-31", "--rate", "abc"], "--rate"),
        (["--amount", "12000", "--due", "2024-05-31", "--as-of", "soon"], "--as-of"),
        (["--amount", "-5", "--due", "2024-05-31"], "--amount"),
        (["--amount", "100", "--due", "2010-05-31", "--as-of", "2010-07-01"], "2010 H1"),
    ],
)
def test_penalties_compute_bad_input(cli, extra, needle):
    result = cli("penalties", "compute", *extra, "--json")
    assert result.exit_code == 1, result.output
    assert needle in _flat(result.stderr)
    assert result.stdout == ""
