"""Collective insolvency proceedings end to end: the import columns (idempotent, absent
columns leave the state alone), `encours insolvency declare` / `end` (audit, timeline, the
"declare the claim" task) and the penalties that disappear from the formal notice."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from encours.cli.app import app
from encours.collections.legal import build_notice
from encours.collections.statement import load_customer
from encours.risk.insolvency import (
    InsolvencyError,
    add_months,
    declare_insolvency,
    end_insolvency,
    parse_kind,
)
from encours.services.imports import import_file
from encours.store.collections_schema import Task
from encours.store.db import unit_of_work
from encours.store.outbox_schema import TimelineEvent
from encours.store.schema import AuditEntry, Customer

D = dt.date
AS_OF = D(2024, 8, 30)
runner = CliRunner()

HEADER = "customer_id;name;in_insolvency;insolvency_date;insolvency_kind"
ROWS = (
    "C1;Alpha Industries SAS;;;",
    "C2;Beta Services SARL;oui;2024-03-15;liquidation",
    "C3;Gamma SA;false;;",
)
INVOICES = (
    "invoice_number;customer_id;issue_date;due_date;amount;currency\n"
    "FA-0101;C1;2024-05-01;2024-05-31;12000.00;EUR\n"
    "FA-0201;C2;2024-05-01;2024-05-31;800.00;EUR\n"
)


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _customer(db_url: str, code: str) -> dict:
    table = Customer.__table__
    with unit_of_work(db_url) as conn:
        return dict(conn.execute(select(table).where(table.c.code == code)).mappings().one())


def _state(db_url: str, code: str) -> tuple:
    c = _customer(db_url, code)
    return c["in_insolvency"], c["insolvency_date"], c["insolvency_kind"]


def _rows(db_url: str, table, *where) -> list[dict]:  # noqa: ANN001
    with unit_of_work(db_url) as conn:
        stmt = select(table).where(*where).order_by(table.c.id)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _seed(db_url: str, tmp: Path) -> None:
    path = _write(tmp, "customers.csv", "\n".join([HEADER, *ROWS]) + "\n")
    report = import_file(path, "customers", db_url=db_url, actor="test")
    assert (report.inserted, report.rejected) == (3, 0)
    import_file(_write(tmp, "invoices.csv", INVOICES), "invoices", db_url=db_url, actor="test")


def _notice(db_url: str, code: str):  # noqa: ANN202
    with unit_of_work(db_url) as conn:
        return build_notice(conn, _customer(db_url, code)["id"], AS_OF)


def run(db_url: str, *args: str):  # noqa: ANN201
    return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)


def test_import_columns_idempotent_and_left_alone_when_absent(db_url: str, tmp_path: Path):
    _seed(db_url, tmp_path)
    assert _state(db_url, "C1") == (False, None, None)  # empty cell: false
    assert _state(db_url, "C2") == (True, D(2024, 3, 15), "liquidation")
    assert _state(db_url, "C3") == (False, None, None)
    # the same file again: nothing changes, no customer update audited
    updates = (AuditEntry.__table__.c.action == "update",)
    assert _rows(db_url, AuditEntry.__table__, *updates) == []
    again = _write(tmp_path, "again.csv", "\n".join([HEADER, *ROWS]) + "\n")
    report = import_file(again, "customers", db_url=db_url, actor="test")
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, 3)
    assert _rows(db_url, AuditEntry.__table__, *updates) == []
    # a file without the columns: the state stays; a new customer is not insolvent
    names = _write(tmp_path, "names.csv",
                   "customer_id;name\nC2;Beta Services SAS\nC4;Delta SARL\n")  # fmt: skip
    report = import_file(names, "customers", db_url=db_url, actor="test")
    assert (report.inserted, report.updated) == (1, 1)
    assert _customer(db_url, "C2")["name"] == "Beta Services SAS"
    assert _state(db_url, "C2") == (True, D(2024, 3, 15), "liquidation")
    assert _state(db_url, "C4") == (False, None, None)
    # the file ends the proceedings: updated and audited with before and after
    ended = _write(tmp_path, "ended.csv", f"{HEADER}\nC2;Beta Services SAS;non;;\n")
    report = import_file(ended, "customers", db_url=db_url, actor="test")
    assert report.updated == 1
    assert _state(db_url, "C2") == (False, None, None)
    entry = _rows(db_url, AuditEntry.__table__, AuditEntry.__table__.c.entity_key == "C2")[-1]
    assert entry["before"]["in_insolvency"] is True and entry["after"]["in_insolvency"] is False


def test_declared_insolvency_removes_penalties_and_creates_the_claim_task(
    db_url: str, tmp_path: Path
) -> None:
    _seed(db_url, tmp_path)
    notice = _notice(db_url, "C1")  # the worked example: 428.79 penalties + 40.00
    assert (notice.penalties, notice.indemnities) == (Decimal("428.79"), Decimal("40.00"))
    assert notice.reason is None

    result = run(db_url, "insolvency", "declare", "C1", "--date", "2024-06-28",
                 "--kind", "Redressement judiciaire", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["in_insolvency"] is True and out["insolvency_kind"] == "redressement"
    assert out["insolvency_date"] == "2024-06-28" and out["task_due"] == "2024-08-28"
    assert _state(db_url, "C1") == (True, D(2024, 6, 28), "redressement")

    c1 = _customer(db_url, "C1")
    tasks = _rows(db_url, Task.__table__, Task.__table__.c.customer_id == c1["id"])
    assert len(tasks) == 1
    task = tasks[0]
    assert (task["kind"], task["status"], task["due_day"]) == ("declare_claim", "open",
                                                               D(2024, 8, 28))  # fmt: skip
    assert task["assignee"] == "credit_manager" and "mandataire judiciaire" in task["note"]
    audit = _rows(
        db_url, AuditEntry.__table__, AuditEntry.__table__.c.action == "insolvency.declare"
    )
    assert len(audit) == 1 and audit[0]["entity_key"] == "C1"
    assert audit[0]["actor"].startswith("cli")
    assert audit[0]["before"] == {"in_insolvency": False, "insolvency_date": None,
                                  "insolvency_kind": None}  # fmt: skip
    assert audit[0]["after"]["insolvency_kind"] == "redressement"
    events = _rows(db_url, TimelineEvent.__table__,
                   TimelineEvent.__table__.c.customer_id == c1["id"])  # fmt: skip
    assert [e["kind"] for e in events] == ["insolvency"]

    # the formal notice (and the legal file built on it) reads the flag: principal only
    with unit_of_work(db_url) as conn:
        assert load_customer(conn, c1["id"]).in_insolvency is True
    notice = _notice(db_url, "C1")
    assert (notice.penalties, notice.indemnities) == (Decimal(0), Decimal(0))
    assert notice.reason == "insolvency" and notice.principal_minor == 12_000_00

    # declaring the same proceedings again: no change, no second task, no second audit
    result = run(db_url, "insolvency", "declare", "C1", "--date", "2024-06-28",
                 "--kind", "redressement", "--json")  # fmt: skip
    assert result.exit_code == 0 and json.loads(result.output)["changed"] is False
    # converted into a liquidation: updated and audited, the open task is kept
    result = run(db_url, "insolvency", "declare", "C1", "--date", "2024-07-15",
                 "--kind", "liquidation")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _state(db_url, "C1") == (True, D(2024, 7, 15), "liquidation")
    assert len(_rows(db_url, Task.__table__, Task.__table__.c.customer_id == c1["id"])) == 1
    assert len(_rows(db_url, AuditEntry.__table__,
                     AuditEntry.__table__.c.action == "insolvency.declare")) == 2  # fmt: skip

    # the end: cleared, audited, the claim task cancelled, penalties claimable again
    result = run(db_url, "insolvency", "end", "C1", "--date", "2024-08-01", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cancelled_tasks"] == [task["id"]]
    assert _state(db_url, "C1") == (False, None, None)
    assert _rows(db_url, Task.__table__, Task.__table__.c.id == task["id"])[0]["status"] == (
        "cancelled")  # fmt: skip
    ended = _rows(db_url, AuditEntry.__table__, AuditEntry.__table__.c.action == "insolvency.end")
    assert ended[0]["before"]["insolvency_kind"] == "liquidation"
    assert ended[0]["after"]["in_insolvency"] is False
    notice = _notice(db_url, "C1")
    assert (notice.penalties, notice.indemnities) == (Decimal("428.79"), Decimal("40.00"))


def test_cli_refuses_bad_input(db_url: str, tmp_path: Path) -> None:
    _seed(db_url, tmp_path)
    bad_kind = run(db_url, "insolvency", "declare", "C1", "--date", "2024-06-28",
                   "--kind", "faillite")  # fmt: skip
    assert bad_kind.exit_code == 1 and "sauvegarde" in bad_kind.output
    bad_date = run(db_url, "insolvency", "declare", "C1", "--date", "28/06/2024",
                   "--kind", "sauvegarde")  # fmt: skip
    assert bad_date.exit_code == 1
    unknown = run(db_url, "insolvency", "declare", "NOPE", "--date", "2024-06-28",
                  "--kind", "sauvegarde")  # fmt: skip
    assert unknown.exit_code == 1
    not_insolvent = run(db_url, "insolvency", "end", "C3", "--date", "2024-06-28")
    assert not_insolvent.exit_code == 1
    assert _state(db_url, "C1") == (False, None, None)
    assert _rows(db_url, Task.__table__) == []


def test_service_errors_and_deadline() -> None:
    assert add_months(D(2024, 12, 31), 2) == D(2025, 2, 28)
    assert add_months(D(2024, 6, 28), 2) == D(2024, 8, 28)
    assert parse_kind(" Liquidation  judiciaire ") == "liquidation"
    with pytest.raises(InsolvencyError):
        parse_kind("faillite")
    assert callable(declare_insolvency) and callable(end_insolvency)
