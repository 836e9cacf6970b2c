"""The collector's worklist, and what the collections pages share: who may act on which
customer, the predictions of the stored payment model and the planned dunning run, each
cached per (database, as-of day, ledger version) like the portfolio (web.queries).

Value at risk of a customer = sum over its overdue open invoices of
open amount x p_late x days overdue, set-based (polars) on the cached open invoices.
p_late is the stored model's probability of late payment (the classifier's, from the
invoice's features as of the day: `score_open_invoices` pins it to 1 for invoices already
overdue, which would weigh nothing), or 1.0 for every overdue invoice without a model.
Next action of an account: its open call task, else its open promise (dunning is paused),
else the level the dunning run of the day would send, else "call".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from encours.collections.tasks import open_tasks
from encours.store.db import unit_of_work
from encours.store.frames import query_frame
from encours.store.model_schema import PaymentModel
from encours.web import queries
from encours.web.accounts import Principal
from encours.web.cache import BuildCache
from encours.web.deps import AsOf, DbUrl, csrf_protect, render, require
from encours.web.roles import ADMIN, CREDIT_MANAGER, OWN_ACCOUNTS_ONLY, OWN_COLLECTIONS_ONLY

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)

ALL = "*"  # the worklist of every collector
CACHE_SIZE = 4
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


# --- access --------------------------------------------------------------------------------


def may_act_on(principal: Principal, customer: dict) -> bool:
    """Collectors act on the customers they collect, sales on the accounts they own (only
    where their role allows the action at all), the others on every customer."""
    own = principal.owner_name or queries.NO_OWNER
    if principal.role in OWN_COLLECTIONS_ONLY:
        return customer.get("collector") == own
    if principal.role in OWN_ACCOUNTS_ONLY:
        return customer.get("account_owner") == own
    return True


def customer_for_action(db_url: str | None, code: str, principal: Principal) -> dict:
    """The customer row (404 when the principal may not see it, 403 when it may see it but
    not act on it)."""
    with unit_of_work(db_url) as conn:
        customer = queries.find_customer(conn, code, principal)
    if customer is None:
        raise HTTPException(status_code=404, detail=code)
    if not may_act_on(principal, customer):
        raise HTTPException(status_code=403, detail="this customer is not one of your accounts")
    return customer


def approval_roles(principal: Principal) -> tuple[str, ...]:
    """The dunning approval roles the principal approves for (admin: all of them)."""
    if principal.role == ADMIN:
        return (CREDIT_MANAGER, "sales")
    if principal.role in (CREDIT_MANAGER, "sales"):
        return (principal.role,)
    return ()


# --- caches --------------------------------------------------------------------------------

_caches = {"pred": BuildCache(CACHE_SIZE), "plan": BuildCache(CACHE_SIZE)}


def _cached(kind: str, key: tuple, build: Callable[[], Any]) -> Any:
    return _caches[kind].get_or_build(key, build)


def clear_caches() -> None:
    for cache in _caches.values():
        cache.clear()


@dataclass(frozen=True)
class Predictions:
    """Scores of the open invoices by the stored model (None without a model)."""

    frame: pl.DataFrame | None  # document_id, p_late, p_model, predicted_days_late, ...
    model_kind: str | None = None
    model_as_of: dt.date | None = None


_PRED_COLUMNS = ("document_id", "p_late", "p_model", "predicted_days_late",
                 "predicted_payment_date")  # fmt: skip


def predictions(db_url: str | None, as_of: dt.date) -> Predictions:
    """The stored model's scores of every invoice open on the day (cached on the ledger
    tables only: actions that just audit do not recompute them)."""
    with unit_of_work(db_url) as conn:
        model_row = conn.execute(
            select(PaymentModel.id, PaymentModel.kind, PaymentModel.as_of)
            .where(PaymentModel.as_of <= as_of)
            .order_by(PaymentModel.as_of.desc(), PaymentModel.id.desc()).limit(1)
        ).first()  # fmt: skip
        if model_row is None:
            return Predictions(None)
        version = queries.ledger_version(conn)[:4]

    def build() -> Predictions:
        from encours.risk.features import compute_features, load_ledger
        from encours.risk.model import load_model, score_open_invoices

        with unit_of_work(db_url) as conn:
            ledger = load_ledger(conn)
            model = load_model(conn, as_of)
        if model is None:
            return Predictions(None)
        scored = score_open_invoices(ledger, model, as_of)
        if scored.height:
            feats = compute_features(ledger, scored.select("document_id", cutoff=pl.lit(as_of)))
            raw = feats.select("document_id").with_columns(
                p_model=pl.Series(model.p_late(feats), dtype=pl.Float64).round(4)
            )
            scored = scored.join(raw, on="document_id", how="left")
        else:
            scored = scored.with_columns(p_model=pl.lit(None, dtype=pl.Float64))
        return Predictions(scored.select(_PRED_COLUMNS), model_row.kind, model_row.as_of)

    return _cached("pred", (db_url, as_of, version, model_row.id), build)


_PLAN_SCHEMA = {
    "customer_id": pl.Int64, "customer_code": pl.String, "customer_name": pl.String,
    "collector": pl.String, "level_code": pl.String, "channel": pl.String,
    "status": pl.String, "requires_approval_by": pl.String, "total_due_minor": pl.Int64,
    "currency": pl.String, "invoice_count": pl.Int64, "escalated": pl.Boolean,
    "subject": pl.String,
}  # fmt: skip


@dataclass(frozen=True)
class PlannedRun:
    plan: pl.DataFrame  # one row per message the run of the day would create
    errors: list  # RenderFailure
    skipped: dict


def planned_run(db_url: str | None, as_of: dt.date) -> PlannedRun:
    """The dunning run of the day as a dry run (nothing written), cached per ledger version
    (every action is audited, so any change gives a new plan)."""
    with unit_of_work(db_url) as conn:
        version = queries.ledger_version(conn)

    def build() -> PlannedRun:
        from encours.collections.engine import run_dunning

        with unit_of_work(db_url) as conn:
            result = run_dunning(conn, as_of, dry_run=True, actor="web")
        rows = [{k: r.get(k) for k in _PLAN_SCHEMA} for r in result.plan]
        return PlannedRun(pl.DataFrame(rows, schema=_PLAN_SCHEMA), result.errors, result.skipped)

    return _cached("plan", (db_url, as_of, version), build)


# --- the worklist --------------------------------------------------------------------------


def _open_invoices(db_url: str | None, as_of: dt.date) -> pl.DataFrame:
    from encours.store import positions as positions_store

    data = queries.portfolio_data(db_url, as_of)
    with data.lock:
        if data.open_invoices is None:
            with unit_of_work(db_url) as conn:
                data.open_invoices = positions_store.open_invoices(conn, as_of)
    return data.open_invoices


def collector_of(principal: Principal, requested: str | None) -> str | None:
    """Whose worklist: the one asked for ('*' = everyone's), else a collector's own, else
    everyone's (None)."""
    if requested:
        return None if requested == ALL else requested
    if principal.role in OWN_COLLECTIONS_ONLY:
        return principal.owner_name or queries.NO_OWNER
    return None


WORKLIST_SCHEMA = {
    "customer_id": pl.Int64, "code": pl.String, "name": pl.String, "collector": pl.String,
    "currency": pl.String, "overdue_minor": pl.Int64, "invoices": pl.UInt32,
    "max_days": pl.Int64, "value_at_risk": pl.Float64, "p_late": pl.Float64,
}  # fmt: skip


def worklist(
    db_url: str | None, as_of: dt.date, principal: Principal, collector: str | None
) -> dict:
    """Customers with overdue invoices (of `collector`, or all), by value at risk, with
    their next action."""
    data = queries.portfolio_data(db_url, as_of)
    customers = queries.visible(data.positions, principal, queries.Filters()).select(
        "customer_id", "code", "name", "collector"
    ).unique("customer_id")  # fmt: skip
    if collector is not None:
        customers = customers.filter(pl.col("collector") == collector)
    overdue = _open_invoices(db_url, as_of).filter(
        (pl.col("due_date") < as_of) & (pl.col("open_minor") > 0)
    ).join(customers.select("customer_id"), on="customer_id", how="semi")  # fmt: skip
    overdue = overdue.with_columns(days=(pl.lit(as_of) - pl.col("due_date")).dt.total_days())
    preds = predictions(db_url, as_of)
    if preds.frame is not None:
        overdue = overdue.join(
            preds.frame.select("document_id", "p_model"), on="document_id", how="left"
        ).with_columns(p=pl.col("p_model").fill_null(1.0))  # fmt: skip
    else:
        overdue = overdue.with_columns(p=pl.lit(1.0))
    per_customer = (
        overdue.group_by("customer_id", "currency")
        .agg(
            overdue_minor=pl.col("open_minor").sum(),
            invoices=pl.len(),
            max_days=pl.col("days").max(),
            value_at_risk=(
                pl.col("open_minor").cast(pl.Float64) * pl.col("p") * pl.col("days")
            ).sum(),
            p_late=(pl.col("open_minor") * pl.col("p")).sum() / pl.col("open_minor").sum(),
        )  # fmt: skip
        .join(customers, on="customer_id")
        .select(list(WORKLIST_SCHEMA))
    )
    with unit_of_work(db_url) as conn:
        tasks = open_tasks(conn)
        promises = query_frame(
            conn,
            "SELECT customer_id, promised_date, amount_minor FROM promises "
            "WHERE status = 'open' AND made_on <= :as_of ORDER BY id",
            {"customer_id": pl.Int64, "promised_date": pl.Date, "amount_minor": pl.Int64},
            {"as_of": as_of},
        ).unique("customer_id", keep="last")
    first_task = tasks.sort("due_day", "id").unique("customer_id", keep="first").select(
        "customer_id", task_id=pl.col("id"), task_kind=pl.col("kind"),
        task_due=pl.col("due_day"), task_note=pl.col("note"),
    )  # fmt: skip
    plan = planned_run(db_url, as_of).plan.unique("customer_id", keep="first").select(
        "customer_id", planned_level=pl.col("level_code"), planned_channel=pl.col("channel"),
        planned_approval=pl.col("requires_approval_by"),
    )  # fmt: skip
    frame = (
        per_customer.join(first_task, on="customer_id", how="left")
        .join(plan, on="customer_id", how="left")
        .join(promises.rename({"amount_minor": "promised_minor"}), on="customer_id", how="left")
        .with_columns(
            next_action=pl.when(pl.col("task_id").is_not_null()).then(pl.lit("task"))
            .when(pl.col("promised_date").is_not_null()).then(pl.lit("promise"))
            .when(pl.col("planned_level").is_not_null()).then(pl.lit("level"))
            .otherwise(pl.lit("call"))
        )
        .sort(["value_at_risk", "code"], descending=[True, False])
    )  # fmt: skip
    collectors = sorted(
        v for v in data.positions["collector"].unique().to_list() if v
    )  # fmt: skip
    return {"rows": frame, "model": preds, "collectors": collectors}


@router.get("/worklist")
def worklist_page(
    request: Request,
    principal: Annotated[Principal, Depends(require("worklist.view"))],
    url: DbUrl,
    as_of: AsOf,
    collector: Text = None,
) -> HTMLResponse:
    who = collector_of(principal, collector)
    data = worklist(url, as_of, principal, who)
    template = "_worklist_body.html" if request.headers.get("hx-request") == "true" \
        else "worklist.html"  # fmt: skip
    return render(request, template, worklist_context(principal, data, as_of, who))


def worklist_context(principal: Principal, data: dict, as_of: dt.date, who: str | None) -> dict:
    rows = data["rows"].to_dicts()
    for row in rows:
        row["can_act"] = may_act_on(principal, {"collector": row["collector"]})
    return {"rows": rows, "model": data["model"], "collectors": data["collectors"],
            "collector": who, "as_of": as_of, "ALL": ALL}  # fmt: skip


__all__ = [
    "approval_roles", "customer_for_action", "may_act_on", "planned_run", "predictions",
    "router", "worklist",
]  # fmt: skip
