"""Lettrage: applying payments and credit notes to a customer's open invoices.

The rule: the cash goes to the oldest invoice first — earliest due date, then earliest issue
date, then key — and each invoice takes at most what is still open on it. Partial application
is allowed (an invoice can stay partly open; a payment can be split across invoices). What is
left of a payment once every invoice is settled stays unapplied cash on the customer's account.
Money is conserved: nothing is created or lost, amounts are integer minor units (cents).

Two APIs with the same rule: a scalar one (`allocate_oldest_first`, `allocate_to`) for one
payment, and a vectorised one (`allocate_fifo`) for bulk imports, which applies every payment
of every customer in order without a per-row Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class OpenItem:
    """An invoice with `open_minor` minor units still to be paid (keys of one call: one type)."""

    key: str | int
    open_minor: int
    due_date: date
    issue_date: date


@dataclass(frozen=True)
class Allocation:
    """`amount_minor` of a payment applied to the invoice `key`."""

    key: str | int
    amount_minor: int


def allocate_to(invoice_open_minor: int, amount: int) -> tuple[int, int]:
    """Apply `amount` to one invoice: (applied, remainder); applied = min(open, amount)."""
    if invoice_open_minor < 0 or amount < 0:
        raise ValueError(f"negative amount: open {invoice_open_minor}, amount {amount}")
    applied = min(invoice_open_minor, amount)
    return applied, amount - applied


def allocate_oldest_first(
    invoices: Sequence[OpenItem], amount: int
) -> tuple[list[Allocation], int]:
    """Apply `amount` to `invoices`, oldest due first: (allocations, unapplied remainder).

    Invoices are taken in (due date, issue date, key) order whatever the input order; each is
    settled up to its open amount, the last one possibly in part. Invoices with nothing open are
    skipped; allocations are all > 0. The remainder is unapplied cash on the account.
    """
    if amount < 0:
        raise ValueError(f"negative amount to allocate: {amount}")
    allocations: list[Allocation] = []
    remainder = amount
    for item in sorted(invoices, key=lambda i: (i.due_date, i.issue_date, i.key)):
        if remainder == 0:
            break
        applied, remainder = allocate_to(item.open_minor, remainder)
        if applied:
            allocations.append(Allocation(item.key, applied))
    return allocations, remainder


def _minor_amounts(name: str, values: ArrayLike) -> NDArray[np.int64]:
    """Integer minor units, all > 0 (floats are refused: they would be silently truncated)."""
    amounts = np.asarray(values)
    if amounts.size and amounts.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers (minor units), got {amounts.dtype}")
    if amounts.size and amounts.min() <= 0:
        raise ValueError(f"{name} must all be > 0 (minor units); got {amounts.min()}")
    return amounts.astype(np.int64)


def _intervals(
    customers: NDArray, amounts: NDArray[np.int64], universe: NDArray, offsets: NDArray[np.int64]
) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.int64]]:
    """Stable customer order, and each item's [start, end) on the global line."""
    order = np.argsort(customers, kind="stable")
    amounts = amounts[order]
    end_in_all = np.cumsum(amounts)
    cust = np.searchsorted(universe, customers[order])
    first = np.r_[True, cust[1:] != cust[:-1]] if cust.size else np.zeros(0, dtype=bool)
    # cumulated amount of the previous customers, broadcast to each row of the customer
    before = np.maximum.accumulate(np.where(first, end_in_all - amounts, 0))
    end = offsets[cust] + end_in_all - before
    return order, end - amounts, end


def allocate_fifo(
    inv_customer: ArrayLike,
    inv_id: ArrayLike,
    inv_open: ArrayLike,
    pay_customer: ArrayLike,
    pay_id: ArrayLike,
    pay_amount: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, NDArray[np.int64]]:
    """Apply all payments to all invoices, per customer, oldest first: (invoice_id, payment_id,
    amount) for every non-zero allocation, ordered by customer then position.

    Within a customer, invoices must come in priority order (oldest due first) and payments in
    their order of application (oldest first); customers may be interleaved, the function
    stable-sorts by customer. The result equals applying `allocate_oldest_first` payment by
    payment. Per customer, invoice amounts laid end to end and payment amounts laid end to end
    are two partitions of a line; each allocation is the overlap of an invoice interval and a
    payment interval. Customers sit at disjoint offsets on one global line, so a single merge of
    the breakpoints (np.unique / np.searchsorted) handles them all. Amounts must be > 0.
    """
    inv_customer, inv_id = np.asarray(inv_customer), np.asarray(inv_id)
    pay_customer, pay_id = np.asarray(pay_customer), np.asarray(pay_id)
    inv_open = _minor_amounts("invoice open amounts", inv_open)
    pay_amount = _minor_amounts("payment amounts", pay_amount)
    if not inv_customer.shape == inv_id.shape == inv_open.shape == (len(inv_open),):
        raise ValueError("inv_customer, inv_id and inv_open must be 1-D, of the same length")
    if not pay_customer.shape == pay_id.shape == pay_amount.shape == (len(pay_amount),):
        raise ValueError("pay_customer, pay_id and pay_amount must be 1-D, of the same length")
    if not inv_open.size or not pay_amount.size:
        return inv_id[:0], pay_id[:0], np.zeros(0, dtype=np.int64)

    universe = np.unique(np.concatenate([inv_customer, pay_customer]))
    open_total = np.zeros(len(universe), dtype=np.int64)
    paid_total = np.zeros(len(universe), dtype=np.int64)
    np.add.at(open_total, np.searchsorted(universe, inv_customer), inv_open)
    np.add.at(paid_total, np.searchsorted(universe, pay_customer), pay_amount)
    # each customer owns [offset, offset + max(open, paid)) of the global line
    span = np.maximum(open_total, paid_total)
    offsets = np.concatenate([[0], np.cumsum(span)[:-1]]).astype(np.int64)

    inv_order, inv_start, inv_end = _intervals(inv_customer, inv_open, universe, offsets)
    pay_order, pay_start, pay_end = _intervals(pay_customer, pay_amount, universe, offsets)

    points = np.unique(np.concatenate([inv_start, inv_end, pay_start, pay_end]))
    seg_start, seg_end = points[:-1], points[1:]
    inv_k = np.searchsorted(inv_start, seg_start, side="right") - 1
    pay_k = np.searchsorted(pay_start, seg_start, side="right") - 1
    covered = (
        (inv_k >= 0)
        & (pay_k >= 0)
        & (seg_start < inv_end[inv_k.clip(0)])  # not in a gap after a customer's invoices
        & (seg_start < pay_end[pay_k.clip(0)])  # nor after its payments
    )
    return (
        inv_id[inv_order[inv_k[covered]]],
        pay_id[pay_order[pay_k[covered]]],
        (seg_end - seg_start)[covered],
    )
