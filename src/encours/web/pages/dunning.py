"""Dunning: the planned run of the day to review, run, approve (all, or per customer, by
the role the level requires) and send; the history of runs and messages.

- run and send: admin and credit manager (`dunning.run`);
- approve: the level's role (`requires_approval_by`): credit managers approve the
  credit_manager levels, sales the sales levels of their own accounts, admin either;
- sales see the drafts and messages of their own accounts only.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from encours.collections import actions as coll
from encours.store.db import unit_of_work
from encours.store.outbox_schema import DunningRun
from encours.web import queries
from encours.web.accounts import Principal
from encours.web.deps import AsOf, DbUrl, csrf_protect, render, require
from encours.web.pages import worklist as wl
from encours.web.pages.customer_actions import _day
from encours.web.roles import OWN_ACCOUNTS_ONLY

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)
RUNS = DunningRun.__table__


def letters_dir() -> Path:
    """Where `Send` writes the letter batches (ENCOURS_LETTERS_DIR, default ./outbox as
    `encours dunning send`)."""
    return Path(os.environ.get("ENCOURS_LETTERS_DIR") or "outbox")


def _own(principal: Principal, frame: pl.DataFrame, url: str | None) -> pl.DataFrame:
    """Rows of customers the principal may see (sales: own accounts)."""
    if principal.role not in OWN_ACCOUNTS_ONLY or frame.height == 0:
        return frame
    customers = queries.CUSTOMERS
    with unit_of_work(url) as conn:
        codes = list(
            conn.execute(
                select(customers.c.code).where(
                    customers.c.account_owner == (principal.owner_name or queries.NO_OWNER)
                )
            ).scalars()
        )
    return frame.filter(pl.col("customer_code").is_in(codes))


def dunning_overview(url: str | None, as_of: dt.date, principal: Principal) -> dict:
    planned = wl.planned_run(url, as_of)
    plan = planned.plan
    with unit_of_work(url) as conn:
        comms = coll.list_communications(conn)
        runs = [dict(r) for r in conn.execute(
            select(RUNS).order_by(RUNS.c.as_of.desc()).limit(20)).mappings()]  # fmt: skip
    plan = _own(principal, plan, url)
    comms = _own(principal, comms, url)
    drafts = comms.filter(pl.col("status") == "draft")
    by_customer = (
        drafts.group_by("customer_code", "customer_name", "requires_approval_by")
        .agg(pl.len().alias("messages"), pl.col("level_code").unique().sort().str.join(", ")
             .alias("levels"), pl.col("total_due_minor").sum(), pl.col("currency").first())
        .sort("customer_code")
    )  # fmt: skip
    return {
        "plan": plan.sort("customer_code").to_dicts(), "errors": planned.errors,
        "skipped": planned.skipped, "drafts": by_customer.to_dicts(),
        "messages": comms.head(100).to_dicts(), "runs": runs,
        "approvable": wl.approval_roles(principal),
    }  # fmt: skip


@router.get("/dunning")
def dunning_page(
    request: Request,
    principal: Annotated[Principal, Depends(require("dunning.view"))],
    url: DbUrl,
    as_of: AsOf,
) -> HTMLResponse:
    ctx = dunning_overview(url, as_of, principal)
    ctx.update(as_of=as_of, report=None)
    return render(request, "dunning.html", ctx)


@router.post("/dunning/run")
def dunning_run(
    principal: Annotated[Principal, Depends(require("dunning.run"))],
    url: DbUrl,
    as_of: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    from encours.collections.engine import run_dunning

    day = _day(as_of, dt.date.today())
    with unit_of_work(url) as conn:
        run_dunning(conn, day, actor=principal.actor)
    return RedirectResponse(f"/dunning?as_of={day.isoformat()}", status_code=303)


def approve_drafts(
    url: str | None, principal: Principal, day: dt.date, role: str | None, customer: str | None
) -> list[int]:
    """Approve the drafts waiting for `role` (of one customer, or all those the principal
    may approve); 403 when the principal's role does not approve that level."""
    roles = wl.approval_roles(principal)
    role = role or (roles[0] if len(roles) == 1 else None)
    if role is None:
        raise HTTPException(status_code=422, detail="say which approval role (credit_manager "
                            "or sales)")  # fmt: skip
    if role not in roles:
        raise HTTPException(status_code=403, detail=f"your role does not approve {role} levels")
    if customer:
        wl.customer_for_action(url, customer, principal)
        codes: list[str | None] = [customer]
    elif principal.role in OWN_ACCOUNTS_ONLY:
        with unit_of_work(url) as conn:
            drafts = coll.list_communications(conn, status="draft")
        drafts = _own(principal, drafts, url).filter(pl.col("requires_approval_by") == role)
        codes = sorted(drafts["customer_code"].unique().to_list())
    else:
        codes = [None]
    approved: list[int] = []
    with unit_of_work(url) as conn:
        for code in codes:
            try:
                approved += coll.approve(conn, role, principal.actor, day, code)
            except coll.ActionError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from exc
    return approved


@router.post("/dunning/approve")
def dunning_approve(
    principal: Annotated[Principal, Depends(require("dunning.approve"))],
    url: DbUrl,
    role: Annotated[str, Form(max_length=30)] = "",
    customer: Annotated[str, Form(max_length=64)] = "",
    as_of: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    day = _day(as_of, dt.date.today())
    approve_drafts(url, principal, day, role or None, customer or None)
    return RedirectResponse(f"/dunning?as_of={day.isoformat()}", status_code=303)


@router.post("/dunning/send")
def dunning_send(
    request: Request,
    principal: Annotated[Principal, Depends(require("dunning.run"))],
    url: DbUrl,
    as_of: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    from encours.collections.outbox import send_pending

    day = _day(as_of, dt.date.today())
    report = send_pending(url, day, letters_dir(), actor=principal.actor)
    ctx = dunning_overview(url, day, principal)
    ctx.update(as_of=day, report=report)
    return render(request, "dunning.html", ctx)


__all__ = ["approve_drafts", "dunning_overview", "router"]
