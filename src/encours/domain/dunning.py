"""Dunning decisions (pure: frames in, frames out; no IO).

Vocabulary (as in Odoo's credit control): a **policy** is an ordered list of **levels**;
a **run** decides, as of a day, which customers get which level; each decision becomes
one **communication** listing the customer's invoices.

Rules
-----
* Days are relative to the due date: ``rel_days = as_of - due_date``; a level of ``days``
  is reached by an invoice when ``rel_days >= days``. A level with negative days is a
  *courtesy* reminder: it only concerns invoices not yet overdue (``rel_days <= 0``).
* Disputed invoices and invoices with nothing left to pay are left out.
* Dunning is per customer: the customer's level is that of its most overdue invoice.
  An overdue message lists all the customer's overdue (undisputed) invoices, each at its
  own level; a courtesy message lists the invoices coming due.
* Netting: credit notes and cash not yet applied are deducted from the listed total;
  when nothing is left (net <= 0), nothing is sent. The level's minimum amount is compared
  with that net amount; when it is not met, the highest lower level whose minimum is met
  applies.
* Once per cycle: a level is not sent again while any invoice listed by an earlier
  communication of the customer is still open (``prior_days``, the highest level already
  sent in the cycle). A customer escalates only when its most overdue invoice reaches a
  higher level; when every invoice of those communications is paid, the cycle starts over.
* A broken promise or a broken payment plan escalates: the customer gets at least the
  level following the last one sent.
* Paused customers (hold, promise running, payment plan on track) get nothing.
* A customer with invoices in several currencies gets one message, in the currency of its
  most overdue invoice (one communication per customer, level and day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from encours.i18n import _

CHANNELS = ("email", "letter", "phone")
APPROVAL_ROLES = ("credit_manager", "sales")
CALL_OUTCOMES = ("reached", "promised", "disputed", "no_answer")
ASSIGNMENT_SCOPES = ("customer", "risk_class", "segment")  # precedence order

COURTESY = "courtesy"
OVERDUE = "overdue"

# Why a customer with invoices to dun gets nothing on a run.
SKIP_PAUSED = "paused"
SKIP_NETTED = "netted"  # credit notes / unapplied cash cover what is due
SKIP_ALREADY_SENT = "already_sent"  # level already sent in this cycle
SKIP_NO_LEVEL = "no_level"  # no level reached (or minimum amount not met)


class PolicyError(ValueError):
    """A policy or a level that cannot be used."""


@dataclass(frozen=True, slots=True)
class Level:
    code: str
    days: int  # relative to the due date; negative = before it (courtesy)
    channel: str  # email | letter | phone
    template: str
    claim_penalties: bool = False
    claim_indemnity: bool = False
    min_overdue_minor: int = 0
    approval_role: str | None = None  # None | credit_manager | sales


@dataclass(frozen=True, slots=True)
class Policy:
    code: str
    name: str
    levels: tuple[Level, ...] = field(default_factory=tuple)
    description: str | None = None


def check_policy(policy: Policy) -> Policy:
    """Raise PolicyError unless the levels are usable: codes unique, days strictly
    increasing in order, known channels and approval roles, minimum amounts >= 0."""
    if not policy.code.strip():
        raise PolicyError(_("a policy needs a code"))
    if not policy.levels:
        raise PolicyError(_("policy {code}: no level").format(code=policy.code))
    codes = [lv.code for lv in policy.levels]
    if len(set(codes)) != len(codes):
        raise PolicyError(
            _("policy {code}: level codes must be unique ({codes})").format(
                code=policy.code, codes=codes
            )
        )
    for previous, level in zip(policy.levels, policy.levels[1:], strict=False):
        if level.days <= previous.days:
            raise PolicyError(
                _(
                    "policy {code}: level {level} ({days} days) must come after {previous} "
                    "({previous_days} days)"
                ).format(
                    code=policy.code,
                    level=level.code,
                    days=level.days,
                    previous=previous.code,
                    previous_days=previous.days,
                )
            )
    for level in policy.levels:
        if level.channel not in CHANNELS:
            raise PolicyError(
                _("level {level}: unknown channel {channel!r}").format(
                    level=level.code, channel=level.channel
                )
            )
        if level.approval_role is not None and level.approval_role not in APPROVAL_ROLES:
            raise PolicyError(
                _("level {level}: unknown approval role {role!r}").format(
                    level=level.code, role=level.approval_role
                )
            )
        if level.min_overdue_minor < 0:
            raise PolicyError(
                _("level {level}: the minimum amount must not be negative").format(level=level.code)
            )
        if not level.template.strip():
            raise PolicyError(_("level {level}: a template is required").format(level=level.code))
    return policy


LEVELS_SCHEMA: dict[str, pl.DataType] = {
    "policy_code": pl.String(), "sequence": pl.Int64(), "level_code": pl.String(),
    "level_days": pl.Int64(), "channel": pl.String(), "template": pl.String(),
    "claim_penalties": pl.Boolean(), "claim_indemnity": pl.Boolean(),
    "min_overdue_minor": pl.Int64(), "approval_role": pl.String(),
}  # fmt: skip


def levels_frame(policies: list[Policy]) -> pl.DataFrame:
    """The levels of `policies` as one frame (LEVELS_SCHEMA)."""
    rows = [
        {
            "policy_code": p.code,
            "sequence": i + 1,
            "level_code": lv.code,
            "level_days": lv.days,
            "channel": lv.channel,
            "template": lv.template,
            "claim_penalties": lv.claim_penalties,
            "claim_indemnity": lv.claim_indemnity,
            "min_overdue_minor": lv.min_overdue_minor,
            "approval_role": lv.approval_role,
        }  # fmt: skip
        for p in policies
        for i, lv in enumerate(p.levels)
    ]
    return pl.DataFrame(rows, schema=LEVELS_SCHEMA)


def resolve_policies(
    customers: pl.DataFrame, assignments: pl.DataFrame, default_policy: str
) -> pl.DataFrame:
    """The policy of each customer: its own override, else its risk class's, else its
    segment's, else the default policy.

    `customers`: customer_id, code, segment, risk_class (the last may be absent or null);
    `assignments`: scope, key, policy_code. Returns customer_id, policy_code, policy_source.
    """
    frame = customers.select("customer_id", "code", "segment")
    frame = frame.with_columns(
        customers.get_column("risk_class").cast(pl.String)
        if "risk_class" in customers.columns
        else pl.lit(None, dtype=pl.String).alias("risk_class")
    )
    choice = pl.lit(None, dtype=pl.String)
    source = pl.lit(None, dtype=pl.String)
    for scope, column in (("segment", "segment"), ("risk_class", "risk_class"),
                          ("customer", "code")):  # fmt: skip
        scoped = assignments.filter(pl.col("scope") == scope).select(
            pl.col("key").alias(column), pl.col("policy_code").alias(f"_p_{scope}")
        )
        frame = frame.join(scoped, on=column, how="left")
    for scope in reversed(ASSIGNMENT_SCOPES):  # lowest precedence first, overwritten after
        col = pl.col(f"_p_{scope}")
        choice = pl.when(col.is_not_null()).then(col).otherwise(choice)
        source = pl.when(col.is_not_null()).then(pl.lit(scope)).otherwise(source)
    return frame.select(
        "customer_id",
        choice.fill_null(default_policy).alias("policy_code"),
        source.fill_null("default").alias("policy_source"),
    )


def _reached(level_days: pl.Expr, rel_days: pl.Expr) -> pl.Expr:
    """A level is reached at rel_days; courtesy levels (days < 0) only before the due date."""
    return (level_days <= rel_days) & ((level_days >= 0) | (rel_days <= 0))


def invoice_levels(
    invoices: pl.DataFrame, policies: pl.DataFrame, levels: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    """The dunnable invoices with their relative days and the level each has reached.

    `invoices`: document_id, customer_id, currency, due_date, open_minor, disputed (+ any
    other column, kept). Disputed invoices and those with nothing left to pay are dropped.
    Adds policy_code, rel_days, inv_level_code and inv_level_days (null: no level reached).
    """
    inv = (
        invoices.filter(~pl.col("disputed").fill_null(False) & (pl.col("open_minor") > 0))
        .join(policies.select("customer_id", "policy_code"), on="customer_id", how="left")
        .with_columns(rel_days=(pl.lit(as_of) - pl.col("due_date")).dt.total_days())
    )
    reached = (
        inv.select("document_id", "policy_code", "rel_days")
        .join(levels.select("policy_code", "level_code", "level_days"), on="policy_code")
        .filter(_reached(pl.col("level_days"), pl.col("rel_days")))
        .sort("level_days")
        .group_by("document_id")
        .agg(
            pl.col("level_code").last().alias("inv_level_code"),
            pl.col("level_days").last().alias("inv_level_days"),
        )
    )
    return inv.join(reached, on="document_id", how="left")


PLAN_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "currency": pl.String(), "policy_code": pl.String(),
    "level_code": pl.String(), "level_days": pl.Int64(), "channel": pl.String(),
    "template": pl.String(), "claim_penalties": pl.Boolean(), "claim_indemnity": pl.Boolean(),
    "approval_role": pl.String(), "kind": pl.String(), "top_rel_days": pl.Int64(),
    "invoice_count": pl.Int64(), "listed_minor": pl.Int64(), "unapplied_minor": pl.Int64(),
    "net_due_minor": pl.Int64(), "prior_days": pl.Int64(), "escalated": pl.Boolean(),
}  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """What a run sends (`plan`, one row per customer; `items`, the invoices each lists)
    and why the other customers with something to dun get nothing (`skipped`)."""

    plan: pl.DataFrame
    items: pl.DataFrame  # customer_id, document_id, open_minor, days_overdue, level_code
    skipped: pl.DataFrame  # customer_id, reason


def decide(
    invoices: pl.DataFrame,
    levels: pl.DataFrame,
    unapplied: pl.DataFrame,
    prior: pl.DataFrame,
    escalate: pl.DataFrame,
    paused: pl.DataFrame,
) -> Decision:
    """Decide the level of every customer (see the module docstring for the rules).

    `invoices`: the output of :func:`invoice_levels`; `levels`: LEVELS_SCHEMA;
    `unapplied`: customer_id, currency, unapplied_cash_minor, unapplied_credit_minor;
    `prior`: customer_id, prior_days (highest level already sent in the current cycle);
    `escalate`: customer_id (broken promise or payment plan); `paused`: customer_id, reason.
    """
    leveled = invoices.filter(pl.col("inv_level_days").is_not_null())
    groups = leveled.group_by("customer_id", "currency").agg(
        pl.col("rel_days").max().alias("top_rel_days")
    )
    # One currency per customer: the one of its most overdue invoice.
    groups = groups.sort(
        ["customer_id", "top_rel_days", "currency"], descending=[False, True, False]
    )
    groups = groups.unique("customer_id", keep="first", maintain_order=True)
    groups = groups.with_columns(
        kind=pl.when(pl.col("top_rel_days") > 0).then(pl.lit(OVERDUE)).otherwise(pl.lit(COURTESY))
    )
    listed = invoices.join(groups, on=["customer_id", "currency"]).filter(
        pl.when(pl.col("kind") == OVERDUE)
        .then(pl.col("rel_days") > 0)
        .otherwise(pl.col("inv_level_days").is_not_null())
    )
    sums = listed.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("invoice_count"),
        pl.col("open_minor").sum().cast(pl.Int64).alias("listed_minor"),
        pl.col("policy_code").first(),
    )
    unapplied_total = unapplied.select(
        "customer_id", "currency",
        (pl.col("unapplied_cash_minor").fill_null(0)
         + pl.col("unapplied_credit_minor").fill_null(0)).cast(pl.Int64).alias("unapplied_minor"),
    )  # fmt: skip
    cust = (
        groups.join(sums, on="customer_id")
        .join(unapplied_total, on=["customer_id", "currency"], how="left")
        .with_columns(pl.col("unapplied_minor").fill_null(0))
        .with_columns(net_due_minor=pl.col("listed_minor") - pl.col("unapplied_minor"))
        .join(prior.select("customer_id", "prior_days"), on="customer_id", how="left")
        .with_columns(
            escalated=pl.col("customer_id").is_in(escalate.get_column("customer_id").implode())
        )
    )
    candidates = cust.select(
        "customer_id", "policy_code", "top_rel_days", "net_due_minor", "prior_days", "escalated"
    ).join(levels, on="policy_code")
    affordable = pl.col("min_overdue_minor") <= pl.col("net_due_minor")
    by_days = candidates.filter(_reached(pl.col("level_days"), pl.col("top_rel_days")) & affordable)
    # A broken promise or plan: at least the level after the last one sent, once overdue.
    by_escalation = (
        candidates.filter(
            pl.col("escalated")
            & (pl.col("top_rel_days") > 0)
            & (pl.col("level_days") >= 0)
            & (pl.col("level_days") > pl.col("prior_days").fill_null(-(10**9)))
            & affordable
        )
        .sort("level_days")
        .unique("customer_id", keep="first", maintain_order=True)
    )
    target = (
        pl.concat([by_days, by_escalation])
        .sort("level_days")
        .unique("customer_id", keep="last", maintain_order=True)
        .select(
            "customer_id",
            "level_code",
            "level_days",
            "channel",
            "template",
            "claim_penalties",
            "claim_indemnity",
            "approval_role",
        )  # fmt: skip
    )
    cust = cust.join(target, on="customer_id", how="left")
    paused_ids = paused.get_column("customer_id").implode()
    reason = (
        pl.when(pl.col("customer_id").is_in(paused_ids)).then(pl.lit(SKIP_PAUSED))
        .when(pl.col("net_due_minor") <= 0).then(pl.lit(SKIP_NETTED))
        .when(pl.col("level_days").is_null()).then(pl.lit(SKIP_NO_LEVEL))
        .when(pl.col("prior_days").is_not_null() & (pl.col("level_days") <= pl.col("prior_days")))
        .then(pl.lit(SKIP_ALREADY_SENT))
        .otherwise(pl.lit(None, dtype=pl.String))
    )  # fmt: skip
    cust = cust.with_columns(skip=reason)
    plan = cust.filter(pl.col("skip").is_null()).select(list(PLAN_SCHEMA)).cast(PLAN_SCHEMA)  # type: ignore[arg-type]
    plan = plan.sort("customer_id")
    skipped = cust.filter(pl.col("skip").is_not_null()).select(
        "customer_id", pl.col("skip").alias("reason")
    )
    items = (
        listed.join(plan.select("customer_id", "level_code"), on="customer_id")
        .select(
            "customer_id",
            "document_id",
            pl.col("open_minor").cast(pl.Int64),
            pl.col("rel_days").clip(lower_bound=0).cast(pl.Int64).alias("days_overdue"),
            pl.coalesce("inv_level_code", "level_code").alias("level_code"),
        )  # fmt: skip
        .sort("customer_id", "days_overdue", "document_id", descending=[False, True, False])
    )
    return Decision(plan=plan, items=items, skipped=skipped.sort("customer_id"))


# --- promises and payment plans ---------------------------------------------------------


def promise_status(
    promised_date: dt.date, grace_days: int, amount_minor: int, paid_minor: int, as_of: dt.date
) -> str:
    """'kept' once the payments received since the promise cover its amount; 'broken' when
    the promised date plus the grace period has passed without that; else 'open' (the
    customer is paused until the promised date + grace days, inclusive)."""
    if paid_minor >= amount_minor:
        return "kept"
    if as_of > promised_date + dt.timedelta(days=grace_days):
        return "broken"
    return "open"


@dataclass(frozen=True, slots=True)
class PlanState:
    status: str  # active | completed | broken
    instalments: tuple[str, ...]  # paid | due | missed, in due-date order


def plan_status(
    instalments: list[tuple[dt.date, int]], paid_minor: int, grace_days: int, as_of: dt.date
) -> PlanState:
    """Follow a payment plan instalment by instalment.

    Payments received since the plan was agreed pay the instalments in due-date order
    (cumulatively). An instalment not covered once its due date + grace days has passed is
    missed and breaks the plan; when every instalment is covered the plan is completed;
    otherwise it is active and the customer is not dunned.
    """
    states: list[str] = []
    cumulative = 0
    grace = dt.timedelta(days=grace_days)
    for due, amount in sorted(instalments):
        cumulative += amount
        if paid_minor >= cumulative:
            states.append("paid")
        elif as_of > due + grace:
            states.append("missed")
        else:
            states.append("due")
    if "missed" in states:
        status = "broken"
    elif states and all(s == "paid" for s in states):
        status = "completed"
    else:
        status = "active"
    return PlanState(status, tuple(states))


__all__ = [
    "APPROVAL_ROLES",
    "ASSIGNMENT_SCOPES",
    "CALL_OUTCOMES",
    "CHANNELS",
    "COURTESY",
    "LEVELS_SCHEMA",
    "OVERDUE",
    "PLAN_SCHEMA",
    "Decision",
    "Level",
    "PlanState",
    "Policy",
    "PolicyError",
    "check_policy",
    "decide",
    "invoice_levels",
    "levels_frame",
    "plan_status",
    "promise_status",
    "resolve_policies",
]
