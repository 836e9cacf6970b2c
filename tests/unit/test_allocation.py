from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encours.domain.allocation import (
    Allocation,
    OpenItem,
    allocate_fifo,
    allocate_oldest_first,
    allocate_to,
)

D0 = date(2024, 1, 1)


def item(key: str | int, open_minor: int, due: int, issue: int = 0) -> OpenItem:
    return OpenItem(key, open_minor, D0 + timedelta(days=due), D0 + timedelta(days=issue))


# --- scalar API -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_minor", "amount", "expected"),
    [
        (100, 30, (30, 0)),
        (100, 100, (100, 0)),
        (100, 250, (100, 150)),
        (0, 50, (0, 50)),
        (5, 0, (0, 0)),
    ],
)
def test_allocate_to(open_minor: int, amount: int, expected: tuple[int, int]) -> None:
    assert allocate_to(open_minor, amount) == expected


@pytest.mark.parametrize(("open_minor", "amount"), [(-1, 10), (10, -1)])
def test_allocate_to_rejects_negative(open_minor: int, amount: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        allocate_to(open_minor, amount)


def test_oldest_due_first_with_partial_and_remainder() -> None:
    invoices = [item("C", 500, due=60), item("A", 300, due=30), item("B", 200, due=45)]
    allocations, rest = allocate_oldest_first(invoices, 600)
    assert allocations == [Allocation("A", 300), Allocation("B", 200), Allocation("C", 100)]
    assert rest == 0
    allocations, rest = allocate_oldest_first(invoices, 1_500)
    assert [a.amount_minor for a in allocations] == [300, 200, 500]
    assert rest == 500  # unapplied cash on the account


def test_ties_broken_by_issue_date_then_key() -> None:
    invoices = [
        item("b", 10, due=30, issue=5),
        item("a", 10, due=30, issue=5),
        item("z", 10, 30, 1),
    ]
    allocations, rest = allocate_oldest_first(invoices, 25)
    assert allocations == [Allocation("z", 10), Allocation("a", 10), Allocation("b", 5)]
    assert rest == 0


def test_settled_invoices_skipped_and_nothing_to_allocate() -> None:
    invoices = [item(1, 0, due=1), item(2, 70, due=2)]
    assert allocate_oldest_first(invoices, 100) == ([Allocation(2, 70)], 30)
    assert allocate_oldest_first(invoices, 0) == ([], 0)
    assert allocate_oldest_first([], 42) == ([], 42)
    with pytest.raises(ValueError, match="negative"):
        allocate_oldest_first(invoices, -5)
    with pytest.raises(ValueError, match="negative"):
        allocate_oldest_first([item(1, -10, due=1)], 5)


# --- vectorised API: examples ----------------------------------------------------------------


def test_allocate_fifo_example_with_interleaved_customers() -> None:
    inv_id, pay_id, amount = allocate_fifo(
        ["b", "a", "b", "a"],
        [1, 2, 3, 4],
        [100, 50, 30, 70],
        ["a", "b", "a"],
        [10, 11, 12],
        [60, 200, 100],
    )
    assert list(zip(inv_id.tolist(), pay_id.tolist(), amount.tolist(), strict=True)) == [
        (2, 10, 50),
        (4, 10, 10),
        (4, 12, 60),  # 40 of payment 12 stays unapplied
        (1, 11, 100),
        (3, 11, 30),  # 70 of payment 11 stays unapplied
    ]
    assert amount.dtype == np.int64


def test_allocate_fifo_keeps_id_dtypes_and_handles_empty_sides() -> None:
    inv_id, pay_id, amount = allocate_fifo([7], ["F-1"], [100], [7, 8], ["P-1", "P-2"], [40, 5])
    assert inv_id.tolist() == ["F-1"] and pay_id.tolist() == ["P-1"] and amount.tolist() == [40]
    for args in (
        ([], [], [], [], [], []),
        ([1], [1], [10], [], [], []),
        ([], [], [], [1], [1], [10]),
        ([1], [1], [10], [2], [2], [10]),  # different customers never meet
    ):
        inv_id, pay_id, amount = allocate_fifo(*args)
        assert len(inv_id) == len(pay_id) == len(amount) == 0


@pytest.mark.parametrize("bad", [0, -5])
def test_allocate_fifo_rejects_non_positive_amounts(bad: int) -> None:
    with pytest.raises(ValueError, match="invoice open amounts must all be > 0"):
        allocate_fifo([1, 1], [1, 2], [10, bad], [1], [1], [5])
    with pytest.raises(ValueError, match="payment amounts must all be > 0"):
        allocate_fifo([1], [1], [10], [1, 1], [1, 2], [bad, 5])


def test_allocate_fifo_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="same length"):
        allocate_fifo([1, 2], [1], [10], [1], [1], [5])
    with pytest.raises(ValueError, match="same length"):
        allocate_fifo([1], [1], [10], [1], [1, 2], [5])


def test_allocate_fifo_bulk_is_vectorised() -> None:
    rng = np.random.default_rng(7)
    n_inv, n_pay = 200_000, 150_000
    inv_customer = rng.integers(0, 5_000, n_inv)
    pay_customer = rng.integers(0, 5_000, n_pay)
    inv_open = rng.integers(1, 1_000_000, n_inv)
    pay_amount = rng.integers(1, 1_500_000, n_pay)
    inv_id, pay_id, amount = allocate_fifo(
        inv_customer, np.arange(n_inv), inv_open, pay_customer, np.arange(n_pay), pay_amount
    )
    assert (amount > 0).all()
    assert (np.bincount(inv_id, amount, n_inv) <= inv_open).all()
    assert (np.bincount(pay_id, amount, n_pay) <= pay_amount).all()
    open_total = np.bincount(inv_customer, inv_open, 5_000)
    paid_total = np.bincount(pay_customer, pay_amount, 5_000)
    applied = np.bincount(inv_customer[inv_id], amount, 5_000)
    assert (applied == np.minimum(open_total, paid_total)).all()


# --- vectorised API: properties --------------------------------------------------------------

invoice_rows = st.tuples(
    st.integers(0, 4),  # customer
    st.integers(1, 10_000),  # open amount
    st.integers(0, 90),  # due date offset
    st.integers(0, 30),  # issue date offset
)
payment_rows = st.tuples(st.integers(0, 4), st.integers(1, 20_000))


def interleave(rows: list, customer_of, order: list[int]) -> list:
    """A shuffle of `rows` that keeps each customer's rows in their relative order."""
    queues: dict[object, list] = defaultdict(list)
    for row in rows:
        queues[customer_of(row)].append(row)
    labels = [customer_of(rows[i]) for i in order]
    positions: dict[object, int] = defaultdict(int)
    out = []
    for label in labels:
        out.append(queues[label][positions[label]])
        positions[label] += 1
    return out


def reference(invoices: list[OpenItem], customer: dict, payments: list[tuple]) -> list[tuple]:
    """The scalar rule applied payment by payment, customers in sorted order."""
    result = []
    for c in sorted({customer[i.key] for i in invoices} | {p[0] for p in payments}):
        remaining = {i.key: i for i in invoices if customer[i.key] == c}
        for _, pay_id, amount in (p for p in payments if p[0] == c):
            allocations, _rest = allocate_oldest_first(list(remaining.values()), amount)
            for a in allocations:
                result.append((a.key, pay_id, a.amount_minor))
                left = remaining[a.key]
                remaining[a.key] = OpenItem(
                    a.key, left.open_minor - a.amount_minor, left.due_date, left.issue_date
                )
    return result


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[list[OpenItem], dict, list[tuple], list[int], list[int]]:
    inv_rows = draw(st.lists(invoice_rows, max_size=25))
    pay_rows = draw(st.lists(payment_rows, max_size=15))
    customer = {}
    invoices = []
    for key, (c, open_minor, due, issue) in enumerate(inv_rows):
        customer[key] = c
        invoices.append(item(key, open_minor, due, min(issue, due)))
    payments = [(c, 1_000 + n, amount) for n, (c, amount) in enumerate(pay_rows)]
    inv_order = draw(st.permutations(range(len(invoices))))
    pay_order = draw(st.permutations(range(len(payments))))
    return invoices, customer, payments, inv_order, pay_order


def run(invoices: list[OpenItem], customer: dict, payments: list[tuple]) -> list[tuple]:
    inv_id, pay_id, amount = allocate_fifo(
        np.array([customer[i.key] for i in invoices], dtype=np.int64),
        np.array([i.key for i in invoices], dtype=np.int64),
        np.array([i.open_minor for i in invoices], dtype=np.int64),
        np.array([p[0] for p in payments], dtype=np.int64),
        np.array([p[1] for p in payments], dtype=np.int64),
        np.array([p[2] for p in payments], dtype=np.int64),
    )
    return list(zip(inv_id.tolist(), pay_id.tolist(), amount.tolist(), strict=True))


def priority(invoices: list[OpenItem]) -> list[OpenItem]:
    return sorted(invoices, key=lambda i: (i.due_date, i.issue_date, i.key))


@given(ledgers())
@settings(max_examples=300, deadline=None)
def test_fifo_conserves_money_and_matches_scalar_reference(ledger: tuple) -> None:
    invoices, customer, payments, inv_order, pay_order = ledger
    ordered = priority(invoices)
    got = run(ordered, customer, payments)

    assert all(amount > 0 for _, _, amount in got)
    per_invoice: dict[int, int] = defaultdict(int)
    per_payment: dict[int, int] = defaultdict(int)
    per_customer: dict[int, int] = defaultdict(int)
    for inv, pay, amount in got:
        per_invoice[inv] += amount
        per_payment[pay] += amount
        per_customer[customer[inv]] += amount
    open_by_key = {i.key: i.open_minor for i in invoices}
    assert all(per_invoice[k] <= open_by_key[k] for k in per_invoice)
    assert all(per_payment[p] <= amount for _, p, amount in payments)
    pay_customer = {p[1]: p[0] for p in payments}
    assert all(customer[inv] == pay_customer[pay] for inv, pay, _ in got)
    for c in set(customer.values()) | set(pay_customer.values()):
        open_total = sum(i.open_minor for i in invoices if customer[i.key] == c)
        paid_total = sum(p[2] for p in payments if p[0] == c)
        assert per_customer[c] == min(open_total, paid_total)

    assert got == reference(invoices, customer, payments)

    shuffled_invoices = interleave(ordered, lambda i: customer[i.key], inv_order)
    shuffled_payments = interleave(payments, lambda p: p[0], pay_order)
    assert run(shuffled_invoices, customer, shuffled_payments) == got


@given(ledgers())
@settings(max_examples=50, deadline=None)
def test_fifo_with_string_customer_and_ids(ledger: tuple) -> None:
    invoices, customer, payments, _, _ = ledger
    ordered = priority(invoices)
    expected = run(ordered, customer, payments)
    inv_id, pay_id, amount = allocate_fifo(
        [f"CUST-{customer[i.key]}" for i in ordered],
        [f"F{i.key}" for i in ordered],
        [i.open_minor for i in ordered],
        [f"CUST-{p[0]}" for p in payments],
        [f"P{p[1]}" for p in payments],
        [p[2] for p in payments],
    )
    got = list(zip(inv_id.tolist(), pay_id.tolist(), amount.tolist(), strict=True))
    assert got == [(f"F{i}", f"P{p}", a) for i, p, a in expected]


def test_allocate_fifo_refuses_float_amounts() -> None:
    with pytest.raises(TypeError, match="integers"):
        allocate_fifo([1], [1], [10.5], [1], [1], [5])
    with pytest.raises(ValueError, match="1-D"):
        allocate_fifo([[1]], [[1]], [[10]], [1], [1], [5])


def test_allocate_fifo_accepts_object_arrays_from_polars() -> None:
    customers = np.array(["b", "a"], dtype=object)  # what pl.Series.to_numpy() gives for String
    inv_id, pay_id, amount = allocate_fifo(
        customers, [1, 2], [100, 50], np.array(["a", "b"], dtype=object), [10, 11], [80, 30]
    )
    assert list(zip(inv_id.tolist(), pay_id.tolist(), amount.tolist(), strict=True)) == [
        (2, 10, 50),
        (1, 11, 30),
    ]
