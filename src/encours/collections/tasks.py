"""The collector's worklist: phone tasks created by the phone levels of a dunning run.

A task belongs to a customer, is assigned to the customer's collector, is due on a day
and is `open` until its outcome is recorded (`done`, with reached / promised / disputed /
no_answer) or it is `cancelled`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl
from sqlalchemy import Connection, insert, select, update

from encours.store.bulk import insert_frame, reserve_ids
from encours.store.collections_schema import Task
from encours.store.db import inserted_id
from encours.store.frames import query_frame
from encours.store.schema import Customer, _now

TASKS = Task.__table__
CUSTOMERS = Customer.__table__


def create_call_task(conn: Connection, communication_row: Mapping[str, object]) -> int:
    """A call task for the communication's customer, assigned to the customer's collector,
    due on the communication's day (`as_of`). Returns the task id."""
    customer_id = int(str(communication_row["customer_id"]))
    collector = conn.execute(
        select(CUSTOMERS.c.collector).where(CUSTOMERS.c.id == customer_id)
    ).scalar()
    due = communication_row.get("as_of") or dt.date.today()
    return int(
        inserted_id(
            conn.execute(
                insert(TASKS).values(
                    customer_id=customer_id,
                    communication_id=communication_row.get("id"),
                    kind="call",
                    assignee=collector,
                    due_day=due,
                    status="open",
                    note=communication_row.get("subject"),
                )
            )
        )
    )


def create_call_tasks(conn: Connection, communications: pl.DataFrame) -> int:
    """Bulk version for a run: `communications` has id, customer_id, as_of, subject and
    collector. Returns the number of tasks created."""
    if communications.height == 0:
        return 0
    first = reserve_ids(conn, TASKS, communications.height)
    frame = communications.select(
        pl.int_range(first, first + communications.height, dtype=pl.Int64).alias("id"),
        pl.col("customer_id"),
        pl.col("id").alias("communication_id"),
        pl.lit("call").alias("kind"),
        pl.col("collector").alias("assignee"),
        pl.col("as_of").alias("due_day"),
        pl.lit("open").alias("status"),
        pl.col("subject").alias("note"),
    )
    return insert_frame(conn, TASKS, frame)


def open_tasks(conn: Connection, collector: str | None = None) -> pl.DataFrame:
    """Open tasks (of one collector, or all), oldest due first, with the customer."""
    where = "AND t.assignee = :collector" if collector is not None else ""
    sql = f"""
        SELECT t.id, t.customer_id, c.code AS customer_code, c.name AS customer_name,
               t.communication_id, t.kind, t.assignee, t.due_day, t.note
        FROM tasks t JOIN customers c ON c.id = t.customer_id
        WHERE t.status = 'open' {where}
        ORDER BY t.due_day, t.id
    """
    schema = {
        "id": pl.Int64, "customer_id": pl.Int64, "customer_code": pl.String,
        "customer_name": pl.String, "communication_id": pl.Int64, "kind": pl.String,
        "assignee": pl.String, "due_day": pl.Date, "note": pl.String,
    }  # fmt: skip
    params = {"collector": collector} if collector is not None else {}
    return query_frame(conn, sql, schema, params)


def close_customer_tasks(
    conn: Connection, customer_id: int, outcome: str, note: str | None = None
) -> list[int]:
    """Mark the customer's open call tasks done with `outcome`; returns their ids."""
    ids = list(
        conn.execute(
            select(TASKS.c.id).where(
                (TASKS.c.customer_id == customer_id) & (TASKS.c.status == "open")
                & (TASKS.c.kind == "call")
            )
        ).scalars()
    )  # fmt: skip
    if ids:
        conn.execute(
            update(TASKS)
            .where(TASKS.c.id.in_(ids))
            .values(status="done", outcome=outcome, done_at=_now(),
                    note=note if note is not None else TASKS.c.note)
        )  # fmt: skip
    return ids


__all__ = ["close_customer_tasks", "create_call_task", "create_call_tasks", "open_tasks"]
