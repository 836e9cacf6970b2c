"""Dunning decisions (pure) and message formatting."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from encours.collections.policies import GENTLE, STANDARD
from encours.domain.dunning import (
    Level,
    Policy,
    PolicyError,
    check_policy,
    decide,
    invoice_levels,
    levels_frame,
    plan_status,
    promise_status,
    resolve_policies,
)

AS_OF = dt.date(2025, 3, 31)
LEVELS = levels_frame([STANDARD, GENTLE])


def invoices(rows: list[tuple]) -> pl.DataFrame:
    """(document_id, customer_id, rel_days, open_minor[, disputed])"""
    return pl.DataFrame(
        [{"document_id": r[0], "customer_id": r[1], "currency": "EUR",
          "due_date": AS_OF - dt.timedelta(days=r[2]), "open_minor": r[3],
          "disputed": r[4] if len(r) > 4 else False} for r in rows]
    )  # fmt: skip


def policies_for(*customer_ids: int, code: str = "standard") -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": list(customer_ids), "policy_code": [code] * len(customer_ids)}
    )


EMPTY_UNAPPLIED = pl.DataFrame(
    schema={"customer_id": pl.Int64, "currency": pl.String, "unapplied_cash_minor": pl.Int64,
            "unapplied_credit_minor": pl.Int64}
)  # fmt: skip
NO_PRIOR = pl.DataFrame(schema={"customer_id": pl.Int64, "prior_days": pl.Int64})
NOBODY = pl.DataFrame(schema={"customer_id": pl.Int64})
NOT_PAUSED = pl.DataFrame(schema={"customer_id": pl.Int64, "reason": pl.String})


def run(
    inv: pl.DataFrame,
    unapplied=EMPTY_UNAPPLIED,
    prior=NO_PRIOR,
    escalate=NOBODY,
    paused=NOT_PAUSED,
    policies=None,
):  # noqa: ANN001, ANN201
    ids = inv["customer_id"].unique().to_list()
    pol = policies if policies is not None else policies_for(*ids)
    leveled = invoice_levels(inv, pol, LEVELS, AS_OF)
    return decide(leveled, LEVELS, unapplied, prior, escalate, paused)  # fmt: skip


def level_of(decision, customer_id: int) -> str | None:  # noqa: ANN001
    row = decision.plan.filter(pl.col("customer_id") == customer_id)
    return row["level_code"][0] if row.height else None


def test_shipped_policies_are_valid() -> None:
    assert check_policy(STANDARD) and check_policy(GENTLE)
    assert [lv.days for lv in STANDARD.levels] == [-5, 5, 15, 30, 45]
    assert [lv.channel for lv in STANDARD.levels] == ["email", "email", "phone", "email", "letter"]
    assert STANDARD.levels[3].claim_penalties and not STANDARD.levels[2].claim_penalties
    assert STANDARD.levels[4].approval_role == "credit_manager"


@pytest.mark.parametrize(
    "levels, message",
    [
        ((Level("a", 5, "email", "t"), Level("b", 5, "email", "t")), "must come after"),
        ((Level("a", 5, "fax", "t"),), "unknown channel"),
        ((Level("a", 5, "email", "t", approval_role="boss"),), "unknown approval role"),
        ((Level("a", 5, "email", "t"), Level("a", 9, "email", "t")), "unique"),
        ((), "no level"),
    ],
)
def test_bad_policies_are_refused(levels: tuple, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        check_policy(Policy("p", "P", levels))


@pytest.mark.parametrize(
    "rel_days, level",
    [(-6, None), (-5, "courtesy"), (0, "courtesy"), (2, None), (5, "reminder_1"),
     (14, "reminder_1"), (15, "reminder_2"), (30, "final_reminder"), (45, "formal_notice"),
     (400, "formal_notice")],
)  # fmt: skip
def test_customer_level_by_days(rel_days: int, level: str | None) -> None:
    decision = run(invoices([(1, 1, rel_days, 500_00)]))
    assert level_of(decision, 1) == level


def test_level_of_most_overdue_invoice_lists_all_overdue() -> None:
    decision = run(invoices([(1, 1, 16, 100_00), (2, 1, 2, 50_00), (3, 1, -3, 70_00)]))
    assert level_of(decision, 1) == "reminder_2"
    items = decision.items.filter(pl.col("customer_id") == 1)
    assert sorted(items["document_id"].to_list()) == [1, 2]  # not the one coming due
    assert decision.plan["listed_minor"][0] == 150_00


def test_courtesy_lists_invoices_coming_due_only() -> None:
    decision = run(invoices([(1, 1, -2, 100_00), (2, 1, -20, 50_00)]))
    assert level_of(decision, 1) == "courtesy"
    assert decision.items["document_id"].to_list() == [1]


def test_disputed_invoices_left_out() -> None:
    decision = run(invoices([(1, 1, 40, 100_00, True), (2, 1, 6, 50_00)]))
    assert level_of(decision, 1) == "reminder_1"
    assert decision.items["document_id"].to_list() == [2]
    assert level_of(run(invoices([(1, 2, 40, 100_00, True)])), 2) is None


def test_netting_credit_notes_and_unapplied_cash() -> None:
    inv = invoices([(1, 1, 10, 100_00), (2, 2, 10, 100_00)])
    unapplied = pl.DataFrame({"customer_id": [1, 2], "currency": ["EUR", "EUR"],
                              "unapplied_cash_minor": [60_00, 30_00],
                              "unapplied_credit_minor": [40_00, None]})  # fmt: skip
    decision = run(inv, unapplied=unapplied)
    assert level_of(decision, 1) is None
    assert decision.skipped.filter(pl.col("customer_id") == 1)["reason"][0] == "netted"
    assert decision.plan.filter(pl.col("customer_id") == 2)["net_due_minor"][0] == 70_00


def test_minimum_amount_falls_back_to_lower_level() -> None:
    # formal notice needs 100 EUR: 60 EUR at D+50 gets the final reminder instead
    assert level_of(run(invoices([(1, 1, 50, 60_00)])), 1) == "final_reminder"
    assert level_of(run(invoices([(1, 1, 50, 100_00)])), 1) == "formal_notice"


def test_once_per_cycle_and_escalation() -> None:
    inv = invoices([(1, 1, 20, 100_00)])
    same = pl.DataFrame({"customer_id": [1], "prior_days": [15]})
    decision = run(inv, prior=same)
    assert level_of(decision, 1) is None
    assert decision.skipped["reason"].to_list() == ["already_sent"]
    lower = pl.DataFrame({"customer_id": [1], "prior_days": [5]})
    assert level_of(run(inv, prior=lower), 1) == "reminder_2"
    # broken promise: at least the level after the last one sent
    escalate = pl.DataFrame({"customer_id": [1]})
    assert level_of(run(inv, prior=same, escalate=escalate), 1) == "final_reminder"


def test_paused_customer_gets_nothing() -> None:
    paused = pl.DataFrame({"customer_id": [1], "reason": ["hold"]})
    decision = run(invoices([(1, 1, 20, 100_00)]), paused=paused)
    assert decision.plan.height == 0 and decision.skipped["reason"].to_list() == ["paused"]


def test_policy_resolution_precedence() -> None:
    customers = pl.DataFrame({
        "customer_id": [1, 2, 3, 4], "code": ["A", "B", "C", "D"],
        "segment": ["late", "late", "prompt", None], "risk_class": [None, "R5", "R5", None],
    })  # fmt: skip
    assignments = pl.DataFrame({
        "scope": ["segment", "risk_class", "customer"], "key": ["late", "R5", "C"],
        "policy_code": ["seg", "risk", "own"],
    })  # fmt: skip
    got = resolve_policies(customers, assignments, "standard").sort("customer_id")
    assert got["policy_code"].to_list() == ["seg", "risk", "own", "standard"]
    assert got["policy_source"].to_list() == ["segment", "risk_class", "customer", "default"]
    no_risk = resolve_policies(customers.drop("risk_class"), assignments, "standard")
    assert no_risk.sort("customer_id")["policy_code"].to_list() == ["seg", "seg", "own", "standard"]


def test_gentle_policy_levels() -> None:
    inv = invoices([(1, 1, 12, 100_00)])
    assert level_of(run(inv, policies=policies_for(1, code="gentle")), 1) == "reminder_1"
    decision = run(invoices([(1, 1, 50, 100_00)]), policies=policies_for(1, code="gentle"))
    assert decision.plan["level_code"][0] == "final_reminder"
    assert decision.plan["approval_role"][0] == "sales"
    assert not decision.plan["claim_penalties"][0]


def test_promise_status() -> None:
    day = dt.date(2025, 4, 10)
    assert promise_status(day, 3, 100, 0, dt.date(2025, 4, 13)) == "open"
    assert promise_status(day, 3, 100, 0, dt.date(2025, 4, 14)) == "broken"
    assert promise_status(day, 3, 100, 100, dt.date(2025, 4, 2)) == "kept"


def test_plan_followed_instalment_by_instalment() -> None:
    plan = [(dt.date(2025, 4, 30), 100), (dt.date(2025, 5, 31), 100)]
    assert plan_status(plan, 0, 3, dt.date(2025, 4, 20)).status == "active"
    state = plan_status(plan, 100, 3, dt.date(2025, 5, 10))
    assert (state.status, state.instalments) == ("active", ("paid", "due"))
    state = plan_status(plan, 100, 3, dt.date(2025, 6, 4))
    assert (state.status, state.instalments) == ("broken", ("paid", "missed"))
    assert plan_status(plan, 200, 3, dt.date(2025, 6, 4)).status == "completed"
