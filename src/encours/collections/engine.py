"""`encours dunning run`: decide, as of a day, what to send to whom, render it and write the
communications, in one transaction (the caller's unit of work).

1. Positions: the open invoices and the unapplied cash / credit notes as of the day
   (store.positions, the one aging computation).
2. Policies: each customer's policy (customer override > risk class > segment > default).
3. Pauses: holds in force, promises running (kept / broken decided here), payment plans
   followed (completed / broken decided here). Broken promises and plans escalate.
4. Decision (domain.dunning.decide, set-based): the customer's level, the invoices listed,
   netting, once-per-cycle rule.
   Customers in insolvency proceedings are left out (skipped, reason `insolvency`): the
   claim is declared to the mandataire judiciaire, they get no reminder nor formal notice.
5. Penalties for the levels that claim them (domain.penalties, per listed invoice, with the
   real allocation history); nothing for consumers. What was already invoiced (charge
   invoice) or waived is not claimed again, and charge invoices ("PEN-...") are listed
   but bear no penalty nor indemnity (collections.claims, set-based). A penalty period in
   a half-year whose ECB rate is not confirmed gives a warning (store.rates).
6. Rendering, per message (Jinja2, strict). **A message whose template fails is not
   created; the run goes on for the other customers and reports every error** (so one bad
   template for one language does not block the whole portfolio); the failed customers are
   picked up by the next run of the day once the template is fixed.
7. Writing, bulk: communications (levels needing approval stay `draft` with
   `requires_approval_by`; others are `approved`; a phone level creates the collector's
   call task and is marked `sent` — the task is its delivery), their items, timeline events
   and audit entries.

Running again for the same day creates nothing new: what was created is "already sent" in
the cycle, and (customer, level, day) is unique.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection, insert, inspect, select, update

from encours.collections import policies as policy_store
from encours.collections.claims import is_charge_invoice, net_claims, settled_claims
from encours.collections.tasks import create_call_tasks
from encours.collections.templates import Renderer, TemplateRenderError
from encours.company import CompanyProfile, load_company
from encours.domain.dunning import (
    PLAN_SCHEMA,
    SKIP_PAUSED,
    decide,
    invoice_levels,
    plan_status,
    promise_status,
    resolve_policies,
)
from encours.domain.penalties import (
    PenaltyError,
    RateTable,
    compute_penalties,
    half_year_start,
)
from encours.i18n import _
from encours.money import from_minor, to_minor
from encours.store import positions
from encours.store.bulk import insert_frame, reserve_ids
from encours.store.collections_schema import PaymentPlan, PaymentPlanInstalment, Promise
from encours.store.db import inserted_id
from encours.store.frames import query_frame
from encours.store.outbox_schema import (
    Communication,
    CommunicationItem,
    DunningRun,
    TimelineEvent,
)
from encours.store.rates import load_rate_table, missing_current_rate_warning
from encours.store.schema import AuditEntry, _now

SKIP_INSOLVENCY = "insolvency"  # collective proceedings: the claim is declared, not dunned
NOTICE_DEADLINE_DAYS = 8  # days given to pay by a message (the formal notice's deadline)

RUNS = DunningRun.__table__
COMMUNICATIONS = Communication.__table__
ITEMS = CommunicationItem.__table__
TIMELINE = TimelineEvent.__table__
AUDIT = AuditEntry.__table__
PROMISES = Promise.__table__
PLANS = PaymentPlan.__table__
INSTALMENTS = PaymentPlanInstalment.__table__


@dataclass(frozen=True)
class RenderFailure:
    customer_code: str
    level_code: str
    template: str
    message: str


@dataclass
class RunResult:
    as_of: dt.date
    dry_run: bool
    run_id: int | None
    plan: list[dict[str, Any]]  # one row per message (created, or planned on a dry run)
    errors: list[RenderFailure] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> customers
    promises: dict[str, int] = field(default_factory=dict)  # kept / broken
    plans: dict[str, int] = field(default_factory=dict)  # completed / broken
    tasks_created: int = 0
    # e.g. a penalty period in a half-year whose ECB rate is not confirmed (store.rates)
    warnings: list[str] = field(default_factory=list)
    # seconds spent planning, rendering and writing (for benchmarks; not stored)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def created(self) -> int:
        return 0 if self.dry_run else len(self.plan)

    def summary(self) -> dict[str, Any]:
        by_level: dict[str, int] = {}
        for row in self.plan:
            by_level[row["level_code"]] = by_level.get(row["level_code"], 0) + 1
        return {
            "as_of": self.as_of.isoformat(), "dry_run": self.dry_run, "run_id": self.run_id,
            "messages": len(self.plan), "by_level": by_level,
            "drafts": sum(1 for r in self.plan if r["status"] == "draft"),
            "errors": len(self.errors), "skipped": self.skipped, "promises": self.promises,
            "plans": self.plans, "tasks_created": self.tasks_created,
            "warnings": self.warnings,
        }  # fmt: skip


# --- reading ----------------------------------------------------------------------------

# What a template sees of the customer (see collections/templates/*/_macros.j2).
_CUSTOMER_CONTEXT = (
    "code", "name", "siren", "vat_number",
    "address_line1", "address_line2", "postal_code", "city", "country",
)  # fmt: skip
_CUSTOMER_SCHEMA = {
    "customer_id": pl.Int64, "code": pl.String, "name": pl.String, "siren": pl.String,
    "vat_number": pl.String, "segment": pl.String, "collector": pl.String,
    "account_owner": pl.String, "is_consumer": pl.Boolean, "in_insolvency": pl.Boolean,
    "penalty_rate": pl.String, "address_line1": pl.String, "address_line2": pl.String,
    "postal_code": pl.String, "city": pl.String, "country": pl.String,
}  # fmt: skip


def _customers(conn: Connection, as_of: dt.date | None = None) -> pl.DataFrame:
    """Customers with their main contact (lowest contact id) and their risk class: the
    latest assessment on or before `as_of` (risk module), when there is one."""
    schema = dict(_CUSTOMER_SCHEMA)
    risk = ""
    params: dict[str, Any] = {}
    if as_of is not None and inspect(conn).has_table("risk_assessments"):
        risk = """, (SELECT r.risk_class FROM risk_assessments r
                     WHERE r.customer_id = c.id AND r.as_of <= :as_of
                     ORDER BY r.as_of DESC LIMIT 1) AS risk_class"""
        schema["risk_class"] = pl.String
        params["as_of"] = as_of
    sql = f"""
        SELECT c.id AS customer_id, c.code, c.name, c.siren, c.vat_number, c.segment,
               c.collector, c.account_owner, c.is_consumer, c.in_insolvency,
               c.penalty_rate, c.address_line1, c.address_line2, c.postal_code, c.city,
               c.country{risk}
        FROM customers c
    """
    customers = query_frame(conn, sql, schema, params)
    contacts = query_frame(
        conn,
        "SELECT id, customer_id, name, email, phone, language FROM contacts ORDER BY id",
        {"id": pl.Int64, "customer_id": pl.Int64, "name": pl.String, "email": pl.String,
         "phone": pl.String, "language": pl.String},
    ).unique("customer_id", keep="first", maintain_order=True)  # fmt: skip
    contacts = contacts.select(
        "customer_id",
        pl.col("name").alias("contact_name"),
        pl.col("email").alias("contact_email"),
        pl.col("phone").alias("contact_phone"),
        pl.col("language").alias("language"),
    )
    return customers.join(contacts, on="customer_id", how="left").with_columns(
        pl.col("language").fill_null("fr").str.to_lowercase().str.slice(0, 2)
    )


def _prior(conn: Connection, as_of: dt.date, open_ids: pl.Series) -> pl.DataFrame:
    """Highest level (in days) already sent to each customer in its current cycle: over the
    communications (not cancelled) up to `as_of` that list an invoice still open; and
    `previous_reminders`, how many of them were actually delivered (status `sent`)."""
    sql = """
        SELECT m.customer_id, m.id AS communication_id, m.status, ci.document_id,
               l.days AS level_days
        FROM communications m
        JOIN communication_items ci ON ci.communication_id = m.id
        JOIN dunning_policies p ON p.code = m.policy_code
        JOIN dunning_levels l ON l.policy_id = p.id AND l.code = m.level_code
        WHERE m.status <> 'cancelled' AND m.as_of <= :as_of
    """
    sent = query_frame(
        conn, sql,
        {"customer_id": pl.Int64, "communication_id": pl.Int64, "status": pl.String,
         "document_id": pl.Int64, "level_days": pl.Int64},
        {"as_of": as_of},
    )  # fmt: skip
    return (
        sent.filter(pl.col("document_id").is_in(open_ids.implode()))
        .group_by("customer_id")
        .agg(
            pl.col("level_days").max().alias("prior_days"),
            pl.col("communication_id")
            .filter(pl.col("status") == "sent")
            .n_unique()
            .cast(pl.Int64)
            .alias("previous_reminders"),
        )
    )


def _existing_today(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    return query_frame(
        conn,
        "SELECT customer_id, level_code FROM communications WHERE as_of = :as_of",
        {"customer_id": pl.Int64, "level_code": pl.String},
        {"as_of": as_of},
    )


def _holds(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    sql = """
        SELECT DISTINCT customer_id FROM dunning_holds
        WHERE start <= :as_of AND until >= :as_of
          AND (released_on IS NULL OR released_on > :as_of)
    """
    return query_frame(conn, sql, {"customer_id": pl.Int64}, {"as_of": as_of})


def _promises(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    """Open promises with the payments received since they were made (set-based)."""
    sql = """
        SELECT pr.id, pr.customer_id, pr.promised_date, pr.grace_days, pr.amount_minor,
               COALESCE(SUM(p.amount_minor), 0) AS paid_minor
        FROM promises pr
        LEFT JOIN payments p ON p.customer_id = pr.customer_id AND p.date >= pr.made_on
                             AND p.date <= :as_of
        WHERE pr.status = 'open' AND pr.made_on <= :as_of
        GROUP BY pr.id, pr.customer_id, pr.promised_date, pr.grace_days, pr.amount_minor
    """
    schema = {"id": pl.Int64, "customer_id": pl.Int64, "promised_date": pl.Date,
              "grace_days": pl.Int64, "amount_minor": pl.Int64, "paid_minor": pl.Int64}  # fmt: skip
    return query_frame(conn, sql, schema, {"as_of": as_of})


def _plans(conn: Connection, as_of: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    plans_sql = """
        SELECT pl.id, pl.customer_id, pl.grace_days,
               COALESCE((SELECT SUM(p.amount_minor) FROM payments p
                         WHERE p.customer_id = pl.customer_id AND p.date >= pl.created_on
                           AND p.date <= :as_of), 0) AS paid_minor
        FROM payment_plans pl
        WHERE pl.status = 'active' AND pl.created_on <= :as_of
    """
    plans = query_frame(
        conn, plans_sql,
        {"id": pl.Int64, "customer_id": pl.Int64, "grace_days": pl.Int64, "paid_minor": pl.Int64},
        {"as_of": as_of},
    )  # fmt: skip
    inst_sql = """
        SELECT i.id, i.plan_id, i.due_date, i.amount_minor, i.status
        FROM payment_plan_instalments i JOIN payment_plans pl ON pl.id = i.plan_id
        WHERE pl.status = 'active' ORDER BY i.plan_id, i.due_date
    """
    instalments = query_frame(
        conn, inst_sql,
        {"id": pl.Int64, "plan_id": pl.Int64, "due_date": pl.Date, "amount_minor": pl.Int64,
         "status": pl.String},
    )  # fmt: skip
    return plans, instalments


def _allocations(conn: Connection, as_of: dt.date, document_ids: list[int]) -> pl.DataFrame:
    """Payments and credit notes applied to these invoices up to `as_of`."""
    frames = []
    schema = {"invoice_id": pl.Int64, "date": pl.Date, "amount_minor": pl.Int64}
    for start in range(0, len(document_ids), 5000):
        chunk = document_ids[start : start + 5000]
        ids = ", ".join(str(int(i)) for i in chunk)  # integers from our own query
        sql = f"""SELECT invoice_id, date, amount_minor FROM allocations
                  WHERE date <= :as_of AND invoice_id IN ({ids})"""
        frames.append(query_frame(conn, sql, schema, {"as_of": as_of}))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


# --- pauses -----------------------------------------------------------------------------


@dataclass
class _Pauses:
    paused: pl.DataFrame  # customer_id, reason
    escalate: pl.DataFrame  # customer_id
    promise_updates: list[tuple[int, int, str]]  # (promise id, customer id, status)
    plan_updates: list[tuple[int, int, str, list[tuple[int, str]]]]


def _pauses(conn: Connection, as_of: dt.date) -> _Pauses:
    paused: list[tuple[int, str]] = [(cid, "hold") for cid in _holds(conn, as_of)["customer_id"]]
    escalate: list[int] = []
    promise_updates = []
    # Few rows (one per open promise / active plan): evaluated one by one.
    for row in _promises(conn, as_of).iter_rows(named=True):
        status = promise_status(row["promised_date"], row["grace_days"], row["amount_minor"],
                                row["paid_minor"], as_of)  # fmt: skip
        if status == "open":
            paused.append((row["customer_id"], "promise"))
        else:
            promise_updates.append((row["id"], row["customer_id"], status))
            if status == "broken":
                escalate.append(row["customer_id"])
    plans, instalments = _plans(conn, as_of)
    by_plan: dict[int, list[dict]] = {}
    for inst in instalments.iter_rows(named=True):
        by_plan.setdefault(inst["plan_id"], []).append(inst)
    plan_updates = []
    for row in plans.iter_rows(named=True):
        insts = by_plan.get(row["id"], [])
        state = plan_status([(i["due_date"], i["amount_minor"]) for i in insts],
                            row["paid_minor"], row["grace_days"], as_of)  # fmt: skip
        changed = [(i["id"], s) for i, s in zip(insts, state.instalments, strict=True)
                   if i["status"] != s]  # fmt: skip
        if state.status == "active":
            paused.append((row["customer_id"], "payment_plan"))
        elif state.status == "broken":
            escalate.append(row["customer_id"])
        if state.status != "active" or changed:
            plan_updates.append((row["id"], row["customer_id"], state.status, changed))
    return _Pauses(
        paused=pl.DataFrame(paused, schema={"customer_id": pl.Int64, "reason": pl.String},
                            orient="row"),
        escalate=pl.DataFrame({"customer_id": escalate}, schema={"customer_id": pl.Int64}),
        promise_updates=promise_updates,
        plan_updates=plan_updates,
    )  # fmt: skip


def _write_pause_updates(conn: Connection, pauses: _Pauses, as_of: dt.date, actor: str) -> None:
    from encours.collections.actions import audit, log_event

    for promise_id, customer_id, status in pauses.promise_updates:
        conn.execute(
            update(PROMISES).where(PROMISES.c.id == promise_id)
            .values(status=status, settled_on=as_of)
        )  # fmt: skip
        summary = (_("Promise to pay kept") if status == "kept"
                   else _("Promise to pay broken: dunning resumes"))  # fmt: skip
        log_event(conn, customer_id, as_of, "promise", actor, summary, "promises", promise_id,
                  {"status": status})  # fmt: skip
        audit(conn, actor, "dunning.promise." + status, "promise", str(promise_id),
              {"status": "open"}, {"status": status})  # fmt: skip
    for plan_id, customer_id, status, changed in pauses.plan_updates:
        for inst_id, inst_status in changed:
            conn.execute(
                update(INSTALMENTS).where(INSTALMENTS.c.id == inst_id).values(status=inst_status)
            )
        if status == "active":
            continue
        conn.execute(
            update(PLANS).where(PLANS.c.id == plan_id).values(status=status, settled_on=as_of)
        )
        summary = (_("Payment plan completed") if status == "completed"
                   else _("Payment plan broken (instalment missed): dunning resumes"))  # fmt: skip
        log_event(conn, customer_id, as_of, "payment_plan", actor, summary, "payment_plans",
                  plan_id, {"status": status})  # fmt: skip
        audit(conn, actor, "dunning.plan." + status, "payment_plan", str(plan_id),
              {"status": "active"}, {"status": status})  # fmt: skip


# --- penalties --------------------------------------------------------------------------


def _penalties(
    conn: Connection, as_of: dt.date, plan: pl.DataFrame, items: pl.DataFrame,
    invoices: pl.DataFrame, customers: pl.DataFrame, rates: RateTable,
) -> tuple[dict[int, tuple[int, int]], list[str]]:  # fmt: skip
    """document_id -> (penalties_minor, indemnity_minor) for the invoices listed by the
    messages whose level claims penalties or the indemnity (overdue invoices only), net of
    what was already invoiced or waived (collections.claims); charge invoices bear none.
    Also the warnings: a penalty period in a half-year whose ECB rate is not confirmed."""
    claiming = plan.filter(pl.col("claim_penalties") | pl.col("claim_indemnity"))
    if claiming.height == 0:
        return {}, []
    lines = (
        items.filter(pl.col("days_overdue") > 0)
        .join(claiming.select("customer_id", "claim_penalties", "claim_indemnity", "currency"),
              on="customer_id")
        .join(invoices.select("document_id", "number", "due_date", "amount_minor"),
              on="document_id")
        .join(customers.select("customer_id", pl.col("code").alias("customer_code"),
                               "is_consumer", "in_insolvency", "penalty_rate"),
              on="customer_id")
    )  # fmt: skip
    # Charge invoices are listed (owed) but bear no penalties: not computed at all.
    computed = lines.filter(~is_charge_invoice())
    allocations = _allocations(conn, as_of, computed["document_id"].to_list())
    paid: dict[int, list[tuple[dt.date, int]]] = {}
    for inv_id, day, amount in allocations.iter_rows():
        paid.setdefault(inv_id, []).append((day, amount))
    gross: dict[int, tuple[int, int]] = {}
    statutory_half_years: set[dt.date] = set()
    # compute_penalties is the one rule for one invoice (periods, half-year rates): called
    # for each listed invoice of the claiming messages only.
    for row in computed.iter_rows(named=True):
        currency = row["currency"]
        rate = row["penalty_rate"]
        contractual = Decimal(rate) if rate not in (None, "") else None
        penalty = compute_penalties(
            from_minor(row["amount_minor"], currency),
            row["due_date"],
            [(d, from_minor(a, currency)) for d, a in paid.get(row["document_id"], [])],
            rates,
            as_of=as_of,
            contractual_rate=contractual,
            is_consumer=bool(row["is_consumer"]),
            in_insolvency=bool(row["in_insolvency"]),
            currency=currency,
        )
        gross[row["document_id"]] = (
            to_minor(penalty.penalties, currency) if row["claim_penalties"] else 0,
            to_minor(penalty.indemnity, "EUR") if row["claim_indemnity"] else 0,
        )
        if row["claim_penalties"] and contractual is None:
            statutory_half_years.update(half_year_start(p.start) for p in penalty.periods)
    amounts = pl.DataFrame(
        [(doc, pen, ind) for doc, (pen, ind) in gross.items()],
        schema={"document_id": pl.Int64, "penalties_minor": pl.Int64,
                "indemnity_minor": pl.Int64},
        orient="row",
    )  # fmt: skip
    frame = (
        lines.select("document_id", "customer_code", "number")
        .join(amounts, on="document_id", how="left")
        .with_columns(pl.col("penalties_minor", "indemnity_minor").fill_null(0))
    )
    settled = settled_claims(conn)
    net = net_claims(frame, settled) if settled.height else frame
    result = {
        doc: (pen, ind)
        for doc, pen, ind in net.select(
            "document_id", "penalties_minor", "indemnity_minor"
        ).iter_rows()
    }
    return result, _rate_warnings(rates, statutory_half_years)


def _rate_warnings(rates: RateTable, half_years: set[dt.date]) -> list[str]:
    """One warning per half-year of a penalty period whose ECB rate is not confirmed."""
    warnings: list[str] = []
    for start in sorted(half_years):
        warning = missing_current_rate_warning(rates, start)
        if warning and warning not in warnings:
            warnings.append(warning)
    return warnings


# --- the run ----------------------------------------------------------------------------


def _company_context(company: CompanyProfile) -> dict[str, Any]:
    data = dataclasses.asdict(company)
    data["address"] = list(company.address)
    data["iban_display"] = company.iban_display
    return data


def run_dunning(
    conn: Connection,
    as_of: dt.date,
    *,
    dry_run: bool = False,
    actor: str = "cli",
    renderer: Renderer | None = None,
    company: CompanyProfile | None = None,
    deadline_days: int = NOTICE_DEADLINE_DAYS,
) -> RunResult:
    """Decide, render and (unless `dry_run`) write the communications of the day.

    Customers in insolvency proceedings are not dunned at all (skipped, reason
    `insolvency`: the creditor declares the claim to the mandataire instead). Messages get
    a payment `deadline` (`as_of` + `deadline_days`, stated by the formal notice)."""
    if deadline_days < 1:
        raise ValueError("deadline_days must be at least 1")
    started = time.perf_counter()
    renderer = renderer or Renderer()
    company = company or load_company()
    company_ctx = _company_context(company)

    levels = policy_store.levels_table(conn)
    customers = _customers(conn, as_of)
    assigned = resolve_policies(
        customers, policy_store.assignments_table(conn), policy_store.default_policy_code(conn)
    )
    open_inv = positions.open_invoices(conn, as_of)
    invoices = invoice_levels(open_inv, assigned, levels, as_of)
    unapplied = positions.unapplied_by_customer(conn, as_of)
    prior = _prior(conn, as_of, open_inv["document_id"])
    pauses = _pauses(conn, as_of)
    decision = decide(invoices, levels, unapplied, prior, pauses.escalate, pauses.paused)

    # Insolvency proceedings: no message at all, whatever the level (set-based).
    insolvent = customers.filter(pl.col("in_insolvency").fill_null(False)).select("customer_id")
    skipped_frame = pl.concat([
        decision.skipped.join(insolvent, on="customer_id", how="anti"),
        pl.concat([decision.plan.select("customer_id"), decision.skipped.select("customer_id")])
        .join(insolvent, on="customer_id", how="semi")
        .with_columns(reason=pl.lit(SKIP_INSOLVENCY)),
    ])  # fmt: skip
    plan = decision.plan.join(insolvent, on="customer_id", how="anti").join(
        _existing_today(conn, as_of), on=["customer_id", "level_code"], how="anti"
    )
    items = decision.items.join(plan.select("customer_id"), on="customer_id", how="semi")
    skipped: dict[str, int] = {}
    for reason, count in skipped_frame.group_by("reason").len().sort("reason").iter_rows():
        skipped[reason] = count
    if skipped.get(SKIP_PAUSED):
        for reason, count in (
            pauses.paused.join(insolvent, on="customer_id", how="anti")
            .unique("customer_id").group_by("reason").len().sort("reason").iter_rows()
        ):  # fmt: skip
            skipped[f"{SKIP_PAUSED}:{reason}"] = count

    rates = load_rate_table(conn) if plan.height else RateTable()
    penalties, warnings = (
        _penalties(conn, as_of, plan, items, open_inv, customers, rates)
        if plan.height else ({}, [])
    )  # fmt: skip
    previous = dict(prior.select("customer_id", "previous_reminders").iter_rows())
    deadline = as_of + dt.timedelta(days=deadline_days)
    rate_cache: dict[str | None, Decimal | None] = {}

    planned = time.perf_counter()
    # Render, message by message.
    cust_rows = {r["customer_id"]: r for r in customers.iter_rows(named=True)}
    details = open_inv.select("document_id", "number", "issue_date", "due_date", "amount_minor")
    lines_by_customer: dict[int, list[dict]] = {}
    for line in (
        items.join(details, on="document_id")
        .sort(
            "customer_id",
            "days_overdue",
            "due_date",
            "number",
            descending=[False, True, False, False],
        )
        .iter_rows(named=True)
    ):
        pen, ind = penalties.get(line["document_id"], (0, 0))
        line["penalties_minor"], line["indemnity_minor"] = pen, ind
        lines_by_customer.setdefault(line["customer_id"], []).append(line)

    now = _now()
    rows: list[dict[str, Any]] = []
    errors: list[RenderFailure] = []
    for p in plan.iter_rows(named=True):
        cust = cust_rows[p["customer_id"]]
        lines = lines_by_customer.get(p["customer_id"], [])
        pen_total = sum(ln["penalties_minor"] for ln in lines)
        ind_total = sum(ln["indemnity_minor"] for ln in lines)
        lang = cust["language"] if cust["language"] in ("fr", "en") else "fr"
        reference = f"{cust['code']}-{as_of:%Y%m%d}"
        contractual = cust["penalty_rate"] or None
        if contractual not in rate_cache:
            rate_cache[contractual] = _penalty_rate(rates, as_of, contractual)
        context = {
            "company": company_ctx,
            "customer": {**{k: cust[k] for k in _CUSTOMER_CONTEXT},
                         "is_consumer": bool(cust["is_consumer"])},
            "contact": {"name": cust["contact_name"], "email": cust["contact_email"],
                        "phone": cust["contact_phone"]},
            "invoices": lines,
            "totals": {
                "listed_minor": p["listed_minor"], "unapplied_minor": p["unapplied_minor"],
                "net_due_minor": p["net_due_minor"], "penalties_minor": pen_total,
                "indemnities_minor": ind_total,
                "claimed_minor": p["net_due_minor"] + pen_total + ind_total,
            },
            "currency": p["currency"],
            "level": {"code": p["level_code"], "days": p["level_days"], "channel": p["channel"],
                      "claim_penalties": p["claim_penalties"],
                      "claim_indemnity": p["claim_indemnity"]},
            "kind": p["kind"],
            "as_of": as_of,
            "deadline": deadline,
            "penalty_rate": rate_cache[contractual],
            "contractual_rate": contractual is not None,
            "previous_reminders": previous.get(p["customer_id"], 0),
            "reference": reference,
            "collector": {"name": cust["collector"], "email": None, "phone": None},
        }  # fmt: skip
        try:
            rendered = renderer.render(p["template"], p["channel"], lang, context)
        except TemplateRenderError as exc:
            errors.append(RenderFailure(cust["code"], p["level_code"], exc.template, exc.message))
            continue
        needs = p["approval_role"]
        status = "draft" if needs else ("sent" if p["channel"] == "phone" else "approved")
        rows.append({
            "customer_id": p["customer_id"], "customer_code": cust["code"],
            "customer_name": cust["name"], "collector": cust["collector"],
            "as_of": as_of, "policy_code": p["policy_code"], "level_code": p["level_code"],
            "channel": p["channel"], "language": lang, "status": status,
            "requires_approval_by": needs,
            "approved_by": None if needs else "policy",
            "approved_at": None if needs else now,
            "sent_at": now if status == "sent" else None,
            "to_address": cust["contact_email"] if p["channel"] == "email" else None,
            "subject": rendered.subject, "body_text": rendered.body_text,
            "body_html": rendered.body_html, "total_due_minor": p["net_due_minor"],
            "penalties_minor": pen_total, "indemnities_minor": ind_total,
            "currency": p["currency"], "invoice_count": p["invoice_count"],
            "kind": p["kind"], "escalated": p["escalated"],
        })  # fmt: skip

    result = RunResult(
        as_of=as_of, dry_run=dry_run, run_id=None, plan=rows, errors=errors, skipped=skipped,
        promises=_count(s for _i, _c, s in pauses.promise_updates),
        plans=_count(s for _i, _c, s, _x in pauses.plan_updates if s != "active"),
        warnings=warnings,
    )  # fmt: skip
    rendered_at = time.perf_counter()
    result.timings = {"plan": planned - started, "render": rendered_at - planned}
    if dry_run:
        return result
    _write_pause_updates(conn, pauses, as_of, actor)
    result.run_id = _run_row(conn, as_of, actor)
    result.tasks_created = _write(conn, result, items, actor)
    conn.execute(
        update(RUNS).where(RUNS.c.id == result.run_id).values(summary=_jsonable(result.summary()))
    )
    result.timings["write"] = time.perf_counter() - rendered_at
    return result


def _penalty_rate(rates: RateTable, day: dt.date, contractual: str | None) -> Decimal | None:
    """The annual penalty rate (percent) applying on `day`: the statutory rate (ECB + 10
    points) or the contractual one (never below 3 x the legal rate); None when unknown."""
    try:
        return rates.penalty_rate(day, Decimal(contractual) if contractual else None)
    except (PenaltyError, ArithmeticError):
        return None


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, default=str))


def _run_row(conn: Connection, as_of: dt.date, actor: str) -> int:
    """The day's run row (a second run of the same day reuses it)."""
    run_id = conn.execute(select(RUNS.c.id).where(RUNS.c.as_of == as_of)).scalar()
    if run_id is None:
        run_id = inserted_id(conn.execute(insert(RUNS).values(as_of=as_of, actor=actor)))
    return int(run_id)


_COMM_COLUMNS = (
    "id", "run_id", "customer_id", "as_of", "policy_code", "level_code", "channel", "language",
    "status", "requires_approval_by", "approved_by", "approved_at", "to_address", "subject",
    "body_text", "body_html", "total_due_minor", "penalties_minor", "indemnities_minor",
    "currency", "sent_at",
)  # fmt: skip

_FRAME_SCHEMA: dict[str, Any] = {
    "customer_id": pl.Int64, "customer_code": pl.String, "customer_name": pl.String,
    "collector": pl.String, "as_of": pl.Date, "policy_code": pl.String,
    "level_code": pl.String, "channel": pl.String, "language": pl.String, "status": pl.String,
    "requires_approval_by": pl.String, "approved_by": pl.String,
    "approved_at": pl.Datetime("us"), "sent_at": pl.Datetime("us"), "to_address": pl.String,
    "subject": pl.String, "body_text": pl.String, "body_html": pl.String,
    "total_due_minor": pl.Int64, "penalties_minor": pl.Int64, "indemnities_minor": pl.Int64,
    "currency": pl.String, "invoice_count": pl.Int64, "kind": pl.String,
    "escalated": pl.Boolean,
}  # fmt: skip


def _write(conn: Connection, result: RunResult, items: pl.DataFrame, actor: str) -> int:
    """Bulk-write the communications, their items, timeline events, audit entries and the
    call tasks of the phone levels. Returns the number of tasks created."""
    if not result.plan:
        return 0
    frame = pl.DataFrame(result.plan, schema=_FRAME_SCHEMA)
    n = frame.height
    first = reserve_ids(conn, COMMUNICATIONS, n)
    frame = frame.with_columns(
        id=pl.int_range(first, first + n, dtype=pl.Int64),
        run_id=pl.lit(result.run_id, dtype=pl.Int64),
    )
    insert_frame(conn, COMMUNICATIONS, frame.select(_COMM_COLUMNS))

    comm_items = items.join(frame.select(pl.col("id").alias("communication_id"), "customer_id"),
                            on="customer_id")  # fmt: skip
    first_item = reserve_ids(conn, ITEMS, comm_items.height)
    insert_frame(conn, ITEMS, comm_items.select(
        pl.int_range(first_item, first_item + comm_items.height, dtype=pl.Int64).alias("id"),
        "communication_id", "document_id", "open_minor", "days_overdue", "level_code",
    ))  # fmt: skip

    data_json = [
        json.dumps({"level": r["level_code"], "channel": r["channel"], "status": r["status"],
                    "total_due_minor": r["total_due_minor"], "currency": r["currency"],
                    "penalties_minor": r["penalties_minor"],
                    "indemnities_minor": r["indemnities_minor"],
                    "invoices": r["invoice_count"], "escalated": r["escalated"],
                    "requires_approval_by": r["requires_approval_by"]})
        for r in result.plan
    ]  # fmt: skip
    template = _("Dunning {level} ({channel}, {status}): {subject}")
    summaries = [
        template.format(level=r["level_code"], channel=r["channel"], status=r["status"],
                        subject=r["subject"])
        for r in result.plan
    ]  # fmt: skip
    first_event = reserve_ids(conn, TIMELINE, n)
    insert_frame(conn, TIMELINE, frame.select(
        pl.int_range(first_event, first_event + n, dtype=pl.Int64).alias("id"),
        "customer_id",
        pl.col("as_of").alias("day"),
        pl.lit("communication").alias("kind"),
        pl.lit(actor).alias("actor"),
        pl.Series("summary", summaries, dtype=pl.String),
        pl.lit("communications").alias("ref_table"),
        pl.col("id").alias("ref_id"),
        pl.Series("data", data_json, dtype=pl.String),
    ))  # fmt: skip
    first_audit = reserve_ids(conn, AUDIT, n)
    insert_frame(conn, AUDIT, frame.select(
        pl.int_range(first_audit, first_audit + n, dtype=pl.Int64).alias("id"),
        pl.lit(actor).alias("actor"),
        pl.lit("dunning.communication").alias("action"),
        pl.lit("communication").alias("entity"),
        pl.col("id").cast(pl.String).alias("entity_key"),
        pl.lit(None, dtype=pl.String).alias("before"),
        pl.Series("after", data_json, dtype=pl.String),
    ))  # fmt: skip
    phone = frame.filter((pl.col("channel") == "phone") & (pl.col("status") == "sent"))
    return create_call_tasks(conn, phone.select("id", "customer_id", "as_of", "subject",
                                                "collector"))  # fmt: skip


__all__ = [
    "NOTICE_DEADLINE_DAYS",
    "PLAN_SCHEMA",
    "SKIP_INSOLVENCY",
    "RenderFailure",
    "RunResult",
    "run_dunning",
]
