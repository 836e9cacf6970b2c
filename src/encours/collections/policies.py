"""Dunning policies: the shipped defaults, storage, and assignment to customers.

Policies are data: the two shipped ones are seeded into `dunning_policies` /
`dunning_levels` on first use and can then be edited (`encours dunning policy ...`).

* ``standard``: courtesy reminder (D-5, email), reminder 1 (D+5, email), reminder 2
  (D+15, phone task for the collector), final reminder (D+30, email, penalties and the
  40 EUR indemnity claimed), formal notice (D+45, registered letter, penalties and
  indemnity, from 100 EUR, approved by the credit manager).
* ``gentle`` (strategic accounts): courtesy (D-5), reminder 1 (D+10), phone call (D+25),
  final reminder (D+45, no penalties, approved by the account owner in sales).

Assignment: a policy is assigned to a segment, a risk class (code string) or one customer
(its code); precedence customer > risk class > segment > the default policy.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, delete, func, insert, select, update

from encours.domain.dunning import (
    ASSIGNMENT_SCOPES,
    LEVELS_SCHEMA,
    Level,
    Policy,
    PolicyError,
    check_policy,
)
from encours.store.collections_schema import DunningAssignment, DunningLevel, DunningPolicy
from encours.store.db import inserted_id
from encours.store.frames import query_frame
from encours.store.schema import AuditEntry

POLICIES = DunningPolicy.__table__
LEVELS = DunningLevel.__table__
ASSIGNMENTS = DunningAssignment.__table__
AUDIT = AuditEntry.__table__

DEFAULT_POLICY = "standard"

STANDARD = Policy(
    code="standard",
    name="Standard",
    description="Courtesy D-5, reminders D+5 and D+15 (call), final D+30, formal notice D+45",
    levels=(
        Level("courtesy", -5, "email", "courtesy"),
        Level("reminder_1", 5, "email", "reminder_1"),
        Level("reminder_2", 15, "phone", "reminder_2"),
        Level("final_reminder", 30, "email", "final_reminder", True, True),
        Level(
            "formal_notice", 45, "letter", "formal_notice", True, True, 100_00, "credit_manager"
        ),  # fmt: skip
    ),
)

GENTLE = Policy(
    code="gentle",
    name="Gentle (strategic accounts)",
    description="Courtesy D-5, reminder D+10, call D+25, final reminder D+45 approved by sales",
    levels=(
        Level("courtesy", -5, "email", "courtesy"),
        Level("reminder_1", 10, "email", "reminder_1"),
        Level("reminder_2", 25, "phone", "reminder_2"),
        Level("final_reminder", 45, "email", "final_reminder", False, False, 0, "sales"),
    ),
)

SHIPPED_POLICIES: tuple[Policy, ...] = (STANDARD, GENTLE)


def _audit(conn: Connection, actor: str, action: str, entity: str, key: str,
           before: dict | None, after: dict | None) -> None:  # fmt: skip
    conn.execute(
        insert(AUDIT).values(
            actor=actor, action=action, entity=entity, entity_key=key, before=before, after=after
        )
    )


def _level_dict(level: Level) -> dict:
    return {
        "code": level.code, "days": level.days, "channel": level.channel,
        "template": level.template, "claim_penalties": level.claim_penalties,
        "claim_indemnity": level.claim_indemnity, "min_overdue_minor": level.min_overdue_minor,
        "approval_role": level.approval_role,
    }  # fmt: skip


def policy_dict(policy: Policy) -> dict:
    """JSON-able view of a policy (for the audit log and `--json`)."""
    return {
        "code": policy.code,
        "name": policy.name,
        "description": policy.description,
        "levels": [_level_dict(lv) for lv in policy.levels],
    }


def ensure_seeded(conn: Connection) -> None:
    """Insert the shipped policies when the table is empty (first use)."""
    if conn.execute(select(func.count()).select_from(POLICIES)).scalar_one() == 0:
        for policy in SHIPPED_POLICIES:
            save_policy(conn, policy, actor="system", default=policy.code == DEFAULT_POLICY)


def save_policy(conn: Connection, policy: Policy, actor: str, default: bool | None = None) -> None:
    """Create or replace a policy and its levels (checked first), and audit the change."""
    check_policy(policy)
    before = get_policy(conn, policy.code, seed=False)
    row = conn.execute(select(POLICIES.c.id).where(POLICIES.c.code == policy.code)).first()
    values: dict = {"name": policy.name, "description": policy.description}
    if default is not None:
        values["is_default"] = default
    if row is None:
        values.setdefault("is_default", False)
        policy_id = inserted_id(conn.execute(insert(POLICIES).values(code=policy.code, **values)))
    else:
        policy_id = row.id
        conn.execute(update(POLICIES).where(POLICIES.c.id == policy_id).values(**values))
        conn.execute(delete(LEVELS).where(LEVELS.c.policy_id == policy_id))
    conn.execute(
        insert(LEVELS),
        [{"policy_id": policy_id, "sequence": i + 1, **_level_dict(lv)}
         for i, lv in enumerate(policy.levels)],
    )  # fmt: skip
    if default:
        conn.execute(update(POLICIES).where(POLICIES.c.id != policy_id).values(is_default=False))
    _audit(conn, actor, "dunning.policy.save", "dunning_policy", policy.code,
           None if before is None else policy_dict(before), policy_dict(policy))  # fmt: skip


def get_policy(conn: Connection, code: str, seed: bool = True) -> Policy | None:
    """One policy with its levels in order, or None."""
    if seed:
        ensure_seeded(conn)
    row = conn.execute(select(POLICIES).where(POLICIES.c.code == code)).first()
    if row is None:
        return None
    levels = conn.execute(
        select(LEVELS).where(LEVELS.c.policy_id == row.id).order_by(LEVELS.c.sequence)
    ).all()
    return Policy(
        code=row.code,
        name=row.name,
        description=row.description,
        levels=tuple(
            Level(lv.code, lv.days, lv.channel, lv.template, bool(lv.claim_penalties),
                  bool(lv.claim_indemnity), int(lv.min_overdue_minor), lv.approval_role)
            for lv in levels
        ),
    )  # fmt: skip


def list_policies(conn: Connection) -> list[tuple[Policy, bool]]:
    """Every policy and whether it is the default one."""
    ensure_seeded(conn)
    rows = conn.execute(select(POLICIES.c.code, POLICIES.c.is_default).order_by(POLICIES.c.code))
    result = []
    for code, is_default in rows.all():
        policy = get_policy(conn, code, seed=False)
        assert policy is not None
        result.append((policy, bool(is_default)))
    return result


def default_policy_code(conn: Connection) -> str:
    ensure_seeded(conn)
    code = conn.execute(select(POLICIES.c.code).where(POLICIES.c.is_default)).scalar()
    return code or DEFAULT_POLICY


def levels_table(conn: Connection) -> pl.DataFrame:
    """Every level of every policy (LEVELS_SCHEMA), one query."""
    ensure_seeded(conn)
    sql = """
        SELECT p.code AS policy_code, l.sequence, l.code AS level_code, l.days AS level_days,
               l.channel, l.template, l.claim_penalties, l.claim_indemnity,
               l.min_overdue_minor, l.approval_role
        FROM dunning_levels l JOIN dunning_policies p ON p.id = l.policy_id
        ORDER BY p.code, l.sequence
    """
    return query_frame(conn, sql, LEVELS_SCHEMA)


def assignments_table(conn: Connection) -> pl.DataFrame:
    """scope, key, policy_code of every assignment."""
    sql = """
        SELECT a.scope, a.key, p.code AS policy_code
        FROM dunning_assignments a JOIN dunning_policies p ON p.id = a.policy_id
        ORDER BY a.scope, a.key
    """
    return query_frame(conn, sql, {"scope": pl.String, "key": pl.String, "policy_code": pl.String})


def assign(conn: Connection, scope: str, key: str, policy_code: str | None, actor: str) -> None:
    """Assign `policy_code` to a segment, a risk class or a customer code (None: remove the
    assignment). Audited (action ``dunning.policy.assign``)."""
    if scope not in ASSIGNMENT_SCOPES:
        raise PolicyError(f"unknown scope {scope!r} (expected one of {ASSIGNMENT_SCOPES})")
    ensure_seeded(conn)
    where = (ASSIGNMENTS.c.scope == scope) & (ASSIGNMENTS.c.key == key)
    current = conn.execute(
        select(POLICIES.c.code).join(ASSIGNMENTS, ASSIGNMENTS.c.policy_id == POLICIES.c.id)
        .where(where)
    ).scalar()  # fmt: skip
    if policy_code is None:
        conn.execute(delete(ASSIGNMENTS).where(where))
    else:
        policy_id = conn.execute(
            select(POLICIES.c.id).where(POLICIES.c.code == policy_code)
        ).scalar()
        if policy_id is None:
            raise PolicyError(f"unknown policy {policy_code!r}")
        if current is None:
            conn.execute(
                insert(ASSIGNMENTS).values(scope=scope, key=key, policy_id=policy_id, actor=actor)
            )
        else:
            conn.execute(update(ASSIGNMENTS).where(where).values(policy_id=policy_id, actor=actor))
    _audit(conn, actor, "dunning.policy.assign", "dunning_assignment", f"{scope}:{key}",
           None if current is None else {"policy": current},
           None if policy_code is None else {"policy": policy_code})  # fmt: skip


__all__ = [
    "DEFAULT_POLICY",
    "GENTLE",
    "SHIPPED_POLICIES",
    "STANDARD",
    "assign",
    "assignments_table",
    "default_policy_code",
    "ensure_seeded",
    "get_policy",
    "levels_table",
    "list_policies",
    "policy_dict",
    "save_policy",
]
