"""`encours monitor`: each rule on a hand-built ledger, deduplication, acknowledgement,
assignment (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, insert, select, update
from typer.testing import CliRunner

from encours import i18n
from encours.analytics.kpis import customer_kpis
from encours.cli.app import app
from encours.imports.canonical import CUSTOMER_SCHEMA, DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.risk.monitor import (
    Thresholds,
    acknowledge,
    check_and_record_order,
    list_alerts,
    run_monitor,
)
from encours.store.alerts_schema import Alert
from encours.store.collections_schema import Promise
from encours.store.db import unit_of_work
from encours.store.outbox_schema import TimelineEvent
from encours.store.risk_schema import RiskAssessment
from encours.store.schema import AuditEntry, Customer

D = dt.date
AS_OF = D(2024, 6, 30)
ALERTS = Alert.__table__
ALICE, BOB, CHLOE = "Alice Martin", "Bob Dupont", "Chloé Leroy"


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    rows = [{"_line": i + 2, **r} for i, r in enumerate(rows)]
    keys = {k for r in rows for k in r}
    return conform(pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k in keys}),
                   schema)  # fmt: skip


def inv(number: str, customer: str, issue: dt.date, due: dt.date, amount_minor: int,
        paid: dt.date | None = None) -> dict:  # fmt: skip
    return {"invoice_number": number, "customer_id": customer, "issue_date": issue,
            "due_date": due, "amount_minor": amount_minor, "currency": "EUR",
            "paid_date": paid}  # fmt: skip


def customer(code: str, limit: int | None = None, owner: str | None = ALICE,
             collector: str | None = BOB) -> dict:  # fmt: skip
    return {"customer_id": code, "name": f"{code.title()} SAS", "country": "FR",
            "credit_limit_minor": limit, "account_owner": owner,
            "collector": collector}  # fmt: skip


def steady_invoices(code: str, months: int, amount: int, unpaid_from: dt.date) -> list[dict]:
    """One invoice on the 15th of each month up to June 2024, due 30 days later, paid on
    its due date unless issued on or after `unpaid_from`."""
    rows = []
    for k in range(months):
        index = 2024 * 12 + 5 - k
        issue = D(index // 12, index % 12 + 1, 15)
        due = issue + dt.timedelta(days=30)
        paid = due if issue < unpaid_from else None
        rows.append(inv(f"{code}-{issue:%Y%m}", code, issue, due, amount, paid))
    return rows


def seed(url: str) -> dict[str, int]:
    customers = [
        customer("LIMIT", limit=10_000_00),
        customer("NEAR", limit=20_000_00),  # under its limit: no alert
        customer("OVERDUE", owner=None, collector=BOB),
        customer("DSO", collector=CHLOE),
        customer("STEADY"),
        customer("PROMISE", owner=None, collector=CHLOE),
        customer("DOWN", collector=None),
        customer("REVIEW", owner=None, collector=None),
        customer("ORDER", limit=100_000_00),
    ]
    docs = [
        inv("L-1", "LIMIT", D(2024, 6, 20), D(2024, 7, 20), 15_000_00),
        inv("N-1", "NEAR", D(2024, 6, 20), D(2024, 7, 20), 15_000_00),
        # issued more than 12 months ago: no sales in the DSO lookback, DSO undefined
        inv("O-1", "OVERDUE", D(2023, 5, 30), D(2024, 6, 29), 12_000_00),  # due yesterday
        inv("O-2", "OVERDUE", D(2023, 5, 30), D(2024, 6, 29), 500_00),  # too small
        inv("O-3", "OVERDUE", D(2023, 5, 2), D(2024, 5, 2), 20_000_00),  # overdue for weeks
        *steady_invoices("DSO", 12, 1_000_00, unpaid_from=D(2024, 5, 1)),
        *steady_invoices("STEADY", 12, 1_000_00, unpaid_from=D(2024, 6, 1)),
    ]
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("c.csv", customers=_frame(customers, CUSTOMER_SCHEMA)),
                   kind="customers")  # fmt: skip
    with unit_of_work(url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=_frame(docs, DOCUMENT_SCHEMA)),
                   kind="invoices")  # fmt: skip
        ids = dict(conn.execute(select(Customer.code, Customer.id)).all())
        conn.execute(
            insert(Promise.__table__).values(
                customer_id=ids["PROMISE"],
                made_on=D(2024, 6, 10),
                promised_date=D(2024, 6, 20),
                amount_minor=3_000_00,
                currency="EUR",
                status="broken",
                settled_on=D(2024, 6, 24),
            )
        )
        conn.execute(
            insert(Promise.__table__).values(  # broken long ago: out of the window
                customer_id=ids["PROMISE"],
                made_on=D(2024, 1, 10),
                promised_date=D(2024, 1, 20),
                amount_minor=1_000_00,
                currency="EUR",
                status="broken",
                settled_on=D(2024, 1, 24),
            )
        )
        assessments = [
            (ids["DOWN"], D(2024, 6, 1), "B", None, D(2025, 6, 1)),
            (ids["DOWN"], D(2024, 6, 29), "D", "B", D(2024, 9, 29)),
            (ids["REVIEW"], D(2023, 1, 1), "B", None, D(2024, 1, 1)),
            (ids["ORDER"], D(2024, 6, 1), "D", "D", D(2024, 9, 1)),
            (ids["STEADY"], D(2024, 6, 1), "A", "B", D(2025, 6, 1)),  # an upgrade
        ]
        for customer_id, as_of, risk_class, previous, review in assessments:
            conn.execute(
                insert(RiskAssessment.__table__).values(
                    customer_id=customer_id,
                    as_of=as_of,
                    risk_class=risk_class,
                    previous_class=previous,
                    review_date=review,
                    reasons=[],
                    source="test",
                )
            )
        check_and_record_order(conn, "ORDER", Decimal("25000"), AS_OF, "sales")
        check_and_record_order(conn, "ORDER", Decimal("1000"), AS_OF, "sales")  # small
    return ids


def dso_customer_id(url: str) -> int:
    return seed_ids(url)["DSO"]


def by_kind(url: str, status: str | None = "open") -> dict[str, set[str]]:
    with unit_of_work(url) as conn:
        rows = list_alerts(conn, status=status)
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row["kind"], set()).add(row["customer_code"])
    return out


def alerts(url: str) -> list[dict]:
    with unit_of_work(url) as conn:
        return [dict(r) for r in conn.execute(select(ALERTS).order_by(ALERTS.c.id)).mappings()]


def monitor(url: str, as_of: dt.date = AS_OF, **overrides: object):  # noqa: ANN201
    with unit_of_work(url) as conn:
        return run_monitor(conn, as_of, Thresholds().with_overrides(**overrides))


@pytest.fixture(autouse=True)
def _english() -> None:
    i18n.set_language("en")


@pytest.fixture
def ledger(db_url: str) -> str:
    seed(db_url)
    return db_url


def test_each_rule_raises_its_alert(ledger: str) -> None:
    report = monitor(ledger)
    assert by_kind(ledger) == {
        "limit_exceeded": {"LIMIT"},
        "new_overdue": {"OVERDUE"},
        "dso_worsened": {"DSO"},
        "broken_promise": {"PROMISE"},
        "class_downgraded": {"DOWN"},
        "review_overdue": {"REVIEW"},
        "large_order": {"ORDER"},
    }
    assert report.skipped == {"predicted_late": "no trained payment model (encours model train)"}
    assert report.counts["limit_exceeded"] == {"found": 1, "new": 1, "reraised": 0, "open": 1}
    rows = {r["kind"]: r for r in alerts(ledger)}
    limit = rows["limit_exceeded"]
    assert limit["severity"] == "critical"  # 15,000 > 1.2 x 10,000
    assert limit["details"] == {"currency": "EUR", "exposure_minor": 15_000_00,
                                "limit_minor": 10_000_00, "excess_minor": 5_000_00}  # fmt: skip
    assert limit["metric"] == 5_000_00
    assert "€5,000.00" in limit["title"]
    assert limit["as_of"] == AS_OF and limit["last_seen"] == AS_OF and limit["status"] == "open"
    overdue = rows["new_overdue"]
    assert overdue["details"]["number"] == "O-1" and overdue["details"]["open_minor"] == 12_000_00
    dso = rows["dso_worsened"]["details"]
    assert dso["dso"] - dso["dso_before"] >= 15 and dso["compared_with"] == "2024-05-31"
    with unit_of_work(ledger) as conn:  # the same DSO as the KPI report's
        for day, value in ((AS_OF, dso["dso"]), (D(2024, 5, 31), dso["dso_before"])):
            kpis = customer_kpis(conn, day).filter(pl.col("customer_id") == dso_customer_id(ledger))
            assert kpis["dso"].to_list() == [value]
    assert rows["broken_promise"]["details"]["amount_minor"] == 3_000_00
    assert rows["class_downgraded"]["severity"] == "critical"  # down to D
    assert rows["class_downgraded"]["details"]["risk_class"] == "D"
    assert rows["review_overdue"]["details"]["review_date"] == "2024-01-01"
    order = rows["large_order"]["details"]
    assert order["amount_minor"] == 25_000_00 and order["risk_class"] == "D"


def test_thresholds_from_the_environment_and_options(ledger: str, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ENCOURS_MONITOR_NEW_OVERDUE_AMOUNT", "400")
    thresholds = Thresholds.from_env()
    assert thresholds.new_overdue_amount == Decimal(400)
    with unit_of_work(ledger) as conn:
        run_monitor(conn, AS_OF, thresholds, kinds=("new_overdue",))
    numbers = {r["details"]["number"] for r in alerts(ledger)}
    assert numbers == {"O-1", "O-2"}
    assert thresholds.with_overrides(p_late="0.5", lookback_days=7).p_late == Decimal("0.5")
    with pytest.raises(ValueError):
        Thresholds().with_overrides(p_late="much")


def test_assignment_collector_or_account_owner(ledger: str) -> None:
    monitor(ledger)
    assignees = {(r["kind"], r["customer_code"]): r["assignee"] for r in
                 list_alerts_all(ledger)}  # fmt: skip
    assert assignees[("limit_exceeded", "LIMIT")] == ALICE  # credit matter: account owner
    assert assignees[("large_order", "ORDER")] == ALICE
    assert assignees[("new_overdue", "OVERDUE")] == BOB  # collection matter: collector
    assert assignees[("dso_worsened", "DSO")] == CHLOE
    assert assignees[("broken_promise", "PROMISE")] == CHLOE
    assert assignees[("class_downgraded", "DOWN")] == ALICE
    assert assignees[("review_overdue", "REVIEW")] is None  # neither
    with unit_of_work(ledger) as conn:
        mine = list_alerts(conn, status="open", assignee=CHLOE)
    assert {r["kind"] for r in mine} == {"dso_worsened", "broken_promise"}


def list_alerts_all(url: str) -> list[dict]:
    with unit_of_work(url) as conn:
        return list_alerts(conn, status=None)


def test_rerun_same_day_and_next_day_creates_no_duplicate(ledger: str) -> None:
    monitor(ledger)
    first = alerts(ledger)
    report = monitor(ledger)
    assert alerts(ledger) == first
    assert report.counts["limit_exceeded"]["new"] == 0
    monitor(ledger, AS_OF + dt.timedelta(days=1))
    after = alerts(ledger)
    assert len(after) == len(first)
    limit = next(r for r in after if r["kind"] == "limit_exceeded")
    assert limit["as_of"] == AS_OF and limit["last_seen"] == AS_OF + dt.timedelta(days=1)
    # the next day's window starts at the previous run: O-1 is not new again, still open
    assert next(r for r in after if r["kind"] == "new_overdue")["status"] == "open"


def test_acknowledged_alert_is_not_raised_again_unless_it_worsens(ledger: str) -> None:
    ids = seed_ids(ledger)
    monitor(ledger)
    limit = next(r for r in alerts(ledger) if r["kind"] == "limit_exceeded")
    with unit_of_work(ledger) as conn:
        acknowledge(conn, limit["id"], "Called the CFO, payment on Friday", "alice", AS_OF)
    with pytest.raises(ValueError), unit_of_work(ledger) as conn:
        acknowledge(conn, limit["id"], "again", "alice", AS_OF)
    monitor(ledger, AS_OF + dt.timedelta(days=1))
    rows = [r for r in alerts(ledger) if r["kind"] == "limit_exceeded"]
    assert len(rows) == 1 and rows[0]["status"] == "acknowledged"
    assert rows[0]["last_seen"] == AS_OF + dt.timedelta(days=1)
    assert rows[0]["acknowledged_by"] == "alice"

    # the overrun grows by more than 20 %: closed, and a new open alert raised
    with unit_of_work(ledger) as conn:
        load_batch(conn, CanonicalBatch("j.csv", documents=_frame(
            [inv("L-2", "LIMIT", D(2024, 7, 1), D(2024, 7, 31), 2_000_00)], DOCUMENT_SCHEMA)),
            kind="invoices")  # fmt: skip
    report = monitor(ledger, AS_OF + dt.timedelta(days=2))
    rows = [r for r in alerts(ledger) if r["kind"] == "limit_exceeded"]
    assert [r["status"] for r in rows] == ["closed", "open"]
    assert rows[1]["metric"] == 7_000_00 and rows[1]["key"] == rows[0]["key"]
    assert report.counts["limit_exceeded"]["reraised"] == 1

    # the limit is raised: the condition clears and the alert closes
    with unit_of_work(ledger) as conn:
        conn.execute(update(Customer).where(Customer.id == ids["LIMIT"])
                     .values(credit_limit_minor=50_000_00))  # fmt: skip
    report = monitor(ledger, AS_OF + dt.timedelta(days=3))
    rows = [r for r in alerts(ledger) if r["kind"] == "limit_exceeded"]
    assert [r["status"] for r in rows] == ["closed", "closed"]
    assert rows[1]["closed_on"] == AS_OF + dt.timedelta(days=3)


def seed_ids(url: str) -> dict[str, int]:
    with unit_of_work(url) as conn:
        return dict(conn.execute(select(Customer.code, Customer.id)).all())


def test_acknowledged_event_is_not_raised_again(ledger: str) -> None:
    monitor(ledger)
    promise = next(r for r in alerts(ledger) if r["kind"] == "broken_promise")
    with unit_of_work(ledger) as conn:
        acknowledge(conn, promise["id"], "New promise taken", "chloe", AS_OF)
    monitor(ledger)
    monitor(ledger, AS_OF + dt.timedelta(days=1))
    rows = [r for r in alerts(ledger) if r["kind"] == "broken_promise"]
    assert len(rows) == 1 and rows[0]["status"] == "acknowledged"
    # events stay open until acknowledged; a month later the acknowledged one is closed
    monitor(ledger, AS_OF + dt.timedelta(days=40))
    rows = [r for r in alerts(ledger) if r["kind"] == "broken_promise"]
    assert [r["status"] for r in rows] == ["closed"]
    assert next(r for r in alerts(ledger) if r["kind"] == "new_overdue")["status"] == "open"


def test_ack_is_audited_and_on_the_timeline_through_the_cli(ledger: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--db", ledger, "monitor", "--as-of", "2024-06-30", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["counts"]["new_overdue"]["new"] == 1
    assert "predicted_late" in payload["skipped"]
    listed = runner.invoke(app, ["--db", ledger, "alerts", "list", "--assignee", BOB, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["kind"] for r in rows] == ["new_overdue"]
    alert_id = rows[0]["id"]
    acked = runner.invoke(app, ["--db", ledger, "alerts", "ack", str(alert_id), "--comment",
                                "Customer says paid today", "--by", "bob"])  # fmt: skip
    assert acked.exit_code == 0, acked.output
    missing = runner.invoke(app, ["--db", ledger, "alerts", "ack", "9999", "--comment", "x"])
    assert missing.exit_code == 1
    with unit_of_work(ledger) as conn:
        audit = conn.execute(select(AuditEntry).where(AuditEntry.action == "alert.acknowledge"))
        audit = audit.mappings().one()
        event = conn.execute(select(TimelineEvent).where(TimelineEvent.ref_table == "alerts"))
        event = event.mappings().one()
    assert audit["actor"] == "bob" and audit["entity_key"] == str(alert_id)
    assert audit["after"]["comment"] == "Customer says paid today"
    assert event["kind"] == "alert" and event["ref_id"] == alert_id
    assert "Customer says paid today" in event["summary"]
    table = runner.invoke(app, ["--db", ledger, "alerts", "list", "--status", "acknowledged"])
    assert table.exit_code == 0 and "O-1" in table.output
    assert runner.invoke(app, ["--db", ledger, "alerts", "list", "--status", "x"]).exit_code == 2
    text = runner.invoke(app, ["--db", ledger, "monitor", "--as-of", "2024-06-30"])
    assert text.exit_code == 0 and "Credit limit exceeded" in text.output


def test_predicted_late_with_a_trained_model(db_url: str, tmp_path: Path) -> None:
    from encours.generate import generate_portfolio
    from encours.risk.model import predict, train_model
    from encours.services.imports import import_file

    as_of = D(2024, 6, 30)
    generate_portfolio(tmp_path, customers=60, invoices=2500, seed=7, end=as_of)
    for kind in ("customers", "invoices", "payments"):
        import_file(tmp_path / f"{kind}.csv", kind, db_url=db_url)
    train_model(db_url, as_of, kind="logistic")
    report = monitor(db_url, as_of, large_invoice_amount="1000", p_late="0.3")
    assert "predicted_late" not in report.skipped
    scores = predict(db_url, as_of).filter(
        (pl.col("due_date") >= as_of) & (pl.col("open_minor") >= 1000_00)
        & (pl.col("p_late") >= 0.3)
    )  # fmt: skip
    expected = set(scores["invoice_number"])
    raised = {r["details"]["number"] for r in alerts(db_url) if r["kind"] == "predicted_late"}
    assert expected and raised == expected
    with unit_of_work(db_url) as conn:
        count = conn.execute(select(func.count()).select_from(ALERTS)).scalar_one()
    report = monitor(db_url, as_of, large_invoice_amount="1000", p_late="0.3")
    with unit_of_work(db_url) as conn:
        assert conn.execute(select(func.count()).select_from(ALERTS)).scalar_one() == count
